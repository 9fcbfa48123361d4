"""``liaisonbot``: run, console, db upgrade, check-config, export, audit verify,
matrix reset-identity, matrix trust.

User mistakes end with one line on stderr and exit 2 (usage) or 1 (a failed check); never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import NoReturn

from liaisonbot.config import ConfigError, Settings, config_path, load, missing_secrets


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"liaisonbot: {message} (see liaisonbot --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="liaisonbot", description="The shared desk between partner offices.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML file (default $LIAISONBOT_CONFIG, else "
                                         "config/liaisonbot.toml)")
        return p

    with_config("run", "run the bot: platforms, scheduler and HTTP server")
    console = with_config("console", "the bot in a terminal, standing in for the chat platforms")
    console.add_argument("--as", dest="user", help="the user typing (e.g. console:alice)")
    console.add_argument("--in", dest="room", help="the room (a room reference or office slug)")
    console.add_argument("--now", help="start the clock at this ISO 8601 time")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    upgrade = db_sub.add_parser("upgrade", help="apply the migrations")
    upgrade.add_argument("--config")
    check = with_config("check-config", "validate the configuration")
    check.add_argument("--online", action="store_true",
                       help="also check platform credentials and rooms (needs the network)")
    export = with_config("export", "a case's request log on stdout")
    export.add_argument("case")
    export.add_argument("--format", choices=("md", "csv", "json"), default="md")
    export.add_argument("--office", help="only requests this office is party to")
    matrix = sub.add_parser("matrix", help="the bot's Matrix account")
    matrix_sub = matrix.add_subparsers(dest="matrix_command", required=True,
                                       parser_class=_Parser)
    reset = matrix_sub.add_parser(
        "reset-identity", help="replace the account's cross-signing identity (needs "
                               "LIAISONBOT_MATRIX_PASSWORD; stop the bot first)")
    reset.add_argument("--config")
    trust = matrix_sub.add_parser(
        "trust", help="accept a member's new cross-signing identity (held since it changed)")
    trust.add_argument("user", help="the member's Matrix id, e.g. @alice:example.org")
    trust.add_argument("--config")
    audit = sub.add_parser("audit", help="the tamper-evident history")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    verify = audit_sub.add_parser("verify", help="check the hash chains and the rows' sealed "
                                  "state; with checkpoints, that what they sealed is unchanged")
    verify.add_argument("--config")
    verify.add_argument("--checkpoint", action="append", default=[], metavar="WORD",
                        help="an lbcp1: checkpoint taken before (repeatable)")
    checkpoint = audit_sub.add_parser("checkpoint", help="print the current signed checkpoint")
    checkpoint.add_argument("--config")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load(config_path(args.config))
    except ConfigError as error:
        for problem in error.problems:
            print(f"{error.path}: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def _usage(message: str) -> NoReturn:
    """Bad usage: one line on stderr, exit 2."""
    print(f"liaisonbot: {message}", file=sys.stderr)
    raise SystemExit(2)


def _parse_now(text: str | None) -> datetime:
    from liaisonbot.chat.console.repl import parse_clock

    if not text:
        return datetime.now(UTC)
    moment = parse_clock(text)
    if isinstance(moment, str):
        from liaisonbot.domain.text import echo
        from liaisonbot.service import messages as m

        _usage(f"--now {echo(text)!r} is not an ISO time like 2026-12-01T09:00+01:00."
               if moment == m.CONSOLE_BAD_NOW else f"--now: {moment}")
    return moment


async def _console(settings: Settings, args: argparse.Namespace) -> int:
    from liaisonbot.bootstrap import build_core, console_gateways
    from liaisonbot.chat.console.repl import run_console
    from liaisonbot.domain.refs import is_room_ref, is_user_ref
    from liaisonbot.domain.text import echo
    from liaisonbot.service.ports import ManualClock

    clock = ManualClock(_parse_now(args.now))
    directory = settings.directory
    first = directory.offices[0]
    room = args.room or first.rooms[0]
    office = directory.office(room)
    room = office.rooms[0] if office else room
    if not is_room_ref(room):
        _usage(f"--in {echo(args.room)!r} is neither an office slug nor a room like console:name")
    bound = directory.office_for_room(room)
    user = args.user or (bound.members[0] if bound and bound.members else "console:officer")
    user = user if ":" in user else f"console:{user}"
    if not is_user_ref(user):
        _usage(f"--as {echo(args.user)!r} is not a user like console:alice")

    def write(text: str) -> None:
        print(text, flush=True)

    core = await build_core(settings, clock=clock, gateways=console_gateways(write))
    try:
        await run_console(core, clock, user=user, room=room)
    finally:
        await core.close()
    return 0


def _reset_identity(settings: Settings) -> int:
    from liaisonbot.chat.matrix.admin import reset_identity
    from liaisonbot.chat.matrix.session import MatrixSetupError

    if not settings.matrix.enabled:
        print(f"liaisonbot: {settings.path} has no [matrix] section enabled", file=sys.stderr)
        return 1
    try:
        master = asyncio.run(reset_identity(settings))
    except MatrixSetupError as error:
        print(f"liaisonbot: matrix: {error}", file=sys.stderr)
        return 1
    except (OSError, TimeoutError) as error:
        print(f"liaisonbot: matrix: {settings.matrix.homeserver} is not reachable "
              f"({type(error).__name__})", file=sys.stderr)
        return 1
    print(f"new cross-signing identity for {settings.matrix.user_id}; master key {master} "
          "(offices that verified the bot should verify it again)")
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    from liaisonbot.domain.refs import is_case_ref
    from liaisonbot.service.reports import export_case
    from liaisonbot.store.db import make_engine
    from liaisonbot.store.schema import ensure_schema
    from liaisonbot.store.uow import SqlUnitOfWorkFactory

    if not is_case_ref(args.case):
        print(f"liaisonbot: {args.case!r} is not a case reference like ICC-01/14-01/18",
              file=sys.stderr)
        return 2
    if args.office and settings.directory.office(args.office) is None:
        print(f"liaisonbot: there is no office {args.office!r}", file=sys.stderr)
        return 2
    await ensure_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        text = await export_case(SqlUnitOfWorkFactory(engine), args.case, fmt=args.format,
                                 office=args.office, directory=settings.directory)
    finally:
        await engine.dispose()
    sys.stdout.write(text)
    return 0


async def _trust(settings: Settings, user: str) -> int:
    """``matrix trust USER``: the member's held identity becomes the pinned one (in the
    database; a running bot takes it up at its next sync)."""
    from liaisonbot.chat.matrix.pins import accept
    from liaisonbot.domain.text import echo
    from liaisonbot.store.db import make_engine
    from liaisonbot.store.uow import SqlUnitOfWorkFactory

    if not settings.matrix.enabled:
        print(f"liaisonbot: {settings.path} has no [matrix] section enabled", file=sys.stderr)
        return 1
    if not user.startswith("@") or ":" not in user:
        _usage(f"{echo(user)!r} is not a Matrix user id like @alice:example.org")
    engine = make_engine(settings.database_url)
    try:
        async with SqlUnitOfWorkFactory(engine)() as uow:
            master = await accept(uow.state, user, datetime.now(UTC))
            await uow.commit()
    finally:
        await engine.dispose()
    if master is None:
        print(f"liaisonbot: matrix: {user}'s cross-signing identity has not changed; "
              "nothing to accept", file=sys.stderr)
        return 1
    print(f"accepted the new cross-signing identity of {user} (master key {master}); the bot "
          "shares room keys with its cross-signed devices again")
    return 0


async def _audit(settings: Settings, args: argparse.Namespace) -> int:
    from liaisonbot.audit_key import NoSigningKey, signing_key
    from liaisonbot.domain.checkpoint import CheckpointError, fingerprint, read
    from liaisonbot.service.reports import check_checkpoint, take_checkpoint, verify_audit
    from liaisonbot.store.db import make_engine
    from liaisonbot.store.schema import ensure_schema
    from liaisonbot.store.uow import SqlUnitOfWorkFactory

    try:
        key = signing_key(settings.audit)
    except NoSigningKey as error:
        print(f"liaisonbot: audit: {error}", file=sys.stderr)
        return 1
    words = getattr(args, "checkpoint", None) or []
    try:  # every checkpoint's signature first: a bad one is refused, nothing is checked
        statements = [read(word, key.public_key()) for word in words]
    except CheckpointError as error:
        print(f"liaisonbot: {error}", file=sys.stderr)
        return 2
    await ensure_schema(settings.database_url)
    engine = make_engine(settings.database_url)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        broken = await verify_audit(uow)
        if args.audit_command == "checkpoint":
            if broken:
                print(f"audit: broken at entry {broken.entry_id}: {broken.reason}; no "
                      "checkpoint is signed over a broken history")
                return 1
            word = await take_checkpoint(uow, key, datetime.now(UTC))
            print(f"audit: key {fingerprint(key.public_key())}; {len(word)} characters")
            print(word)
            return 0
        checks = [await check_checkpoint(uow, s) for s in statements]
    finally:
        await engine.dispose()
    failed = bool(broken)
    if broken:
        where = f"entry {broken.entry_id}" if broken.entry_id is not None else "a request"
        print(f"audit: broken at {where}: {broken.reason}")
    else:
        print("audit: the history chain is intact")
    for check in checks:
        taken = check.statement.at.isoformat()
        if not check.problems:
            print(f"audit: checkpoint of {taken}: everything it sealed is unchanged "
                  f"({check.statement.requests} requests, {check.statement.entries} entries)")
            continue
        failed = True
        for problem in check.problems:
            print(f"audit: checkpoint of {taken}: {problem}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from liaisonbot.logs import setup_logging

    setup_logging()
    settings = _settings(args)
    if args.command in ("check-config", "run") and (missing := missing_secrets(settings)):
        # Fail closed: no secret is ever replaced by a default.
        for problem in missing:
            print(f"liaisonbot: not starting: {problem.partition(': ')[2]}"
                  if args.command == "run" else f"{settings.path}: {problem}", file=sys.stderr)
        return 1
    if args.command == "check-config":
        from liaisonbot.service.levels import unreachable

        for note in unreachable(settings.directory):  # sound, but worth knowing: stdout
            print(f"{settings.path}: note: {note}")
        if args.online:
            from liaisonbot.online import check_online

            notes: list[str] = []
            problems = asyncio.run(check_online(settings, notes))
            for note in notes:
                print(f"{settings.path}: {note}")
            for problem in problems:
                print(f"{settings.path}: {problem}", file=sys.stderr)
            if problems:
                return 1
        print(f"{settings.path}: sound ({len(settings.directory.offices)} offices"
              + (", credentials and rooms checked online)" if args.online else ")"))
        return 0
    if args.command == "db":
        from liaisonbot.store.migrate import upgrade

        upgrade(settings.database_url)
        print("database is at the latest schema")
        return 0
    if args.command == "console":
        return asyncio.run(_console(settings, args))
    if args.command == "export":
        return asyncio.run(_export(settings, args))
    if args.command == "matrix" and args.matrix_command == "trust":
        return asyncio.run(_trust(settings, args.user))
    if args.command == "matrix":
        return _reset_identity(settings)
    if args.command == "audit":
        return asyncio.run(_audit(settings, args))
    from liaisonbot.memory import limit_malloc_arenas
    from liaisonbot.runner import run

    limit_malloc_arenas()  # before the database threads start (see memory.py)
    asyncio.run(run(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
