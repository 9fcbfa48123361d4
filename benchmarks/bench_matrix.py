"""Command → reply latency of the Matrix platform on a real Synapse, beside two floors.

    .venv/bin/python benchmarks/bench_matrix.py [N] [--encrypted] [--in-process]

The bot runs as production runs it: its own ``liaisonbot run`` process (SQLite, the follow-up
ticker, the web port), logged in with an access token, bound to one office room. The partner
(a plain nio client in this process) sends ``!liaison list CASE-i`` and waits until the bot's
answer reaches its own /sync, N times one after the other.

Floors, measured in the same run on the same homeserver:

* **own echo** (the issue's floor): the partner sends into a room of its own and waits for the
  event in its own /sync — one send and one sync.
* **bare bot**: a nio client in its own process that answers every ``!liaison`` message at once
  with a fixed notice (no parsing, no database, no outbox): the least any bot on nio can cost
  for the same path, which is two sends and two syncs (the command reaches the bot's sync, the
  answer the partner's).

``--encrypted``: both rooms encrypted, the partner cross-signed and the bot sharing keys only
with cross-signed devices (the default ``exclude_insecure_devices``), so the reply pays for the
device-trust check and Megolm on both sides, as the own-echo floor pays for Megolm (the bare
bot is skipped: it has no crypto). ``--in-process``: the bot runs in the benchmark's own event
loop (``tests/test_matrix_helpers.running_bot``), sharing the CPU with the partner client, as
the benchmark did before.
"""


from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from support.synapse import (  # noqa: E402
    SYNC_FILTER,
    PartnerClient,
    RegisteredUser,
    SynapseServer,
)
from test_matrix_helpers import register_bot  # noqa: E402

CONFIG = """
[database]
url = "sqlite+aiosqlite:///{db}"
[http]
listen = "127.0.0.1:{port}"
[matrix]
enabled = true
homeserver = "{homeserver}"
user_id = "{user_id}"
data_dir = "{data_dir}"
exclude_insecure_devices = {exclude}
[[offices]]
slug = "icc"
name = "ICC"
timezone = "UTC"
working_days = "Mon-Sun"
rooms = ["matrix:{room}"]
members = ["matrix:{member}"]
"""


FLOOR = "own echo (floor)"
SETTLE = 0.05
#: ``--pin``: the bots on the last CPU, the homeserver and the partner on the others (as a bot
#: on a machine of its own); set in ``main``.
PIN_BOT: list[str] = []


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def bot_process(server: SynapseServer, bot: RegisteredUser, room: str, member: str,
                folder: Path, *, encrypted: bool) -> Any:
    """``liaisonbot run`` for the bot, up when /livez answers; killed afterwards."""
    port = _free_port()
    config = folder / "bot.toml"
    config.write_text(CONFIG.format(db=folder / "bot.db", port=port, homeserver=server.base_url,
                                    user_id=bot.user_id, data_dir=folder / "matrix",
                                    exclude="true" if encrypted else "false", room=room,
                                    member=member), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"),
           "LIAISONBOT_MATRIX_PICKLE_KEY": "bench-pickle-key-0123456789abcdef",
           "LIAISONBOT_MATRIX_ACCESS_TOKEN": bot.access_token,
           "LIAISONBOT_MATRIX_DEVICE_ID": bot.device_id, "LIAISONBOT_DRAIN_SECONDS": "1"}
    log = folder / "bot.log"
    with log.open("w") as err:
        entry = os.environ.get("BENCH_MATRIX_BOT_ENTRY")  # a profiling wrapper, if any
        argv = [sys.executable, entry] if entry else [sys.executable, "-m", "liaisonbot.cli"]
        argv = [*PIN_BOT, *argv]
        proc = subprocess.Popen([*argv, "run", "--config", str(config)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the bot did not come up; see {log}") from None
                time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def bare_bot_process(server: SynapseServer, bot: RegisteredUser) -> Any:
    """The bare nio bot (``--bare-child``) in its own process."""
    proc = subprocess.Popen([*PIN_BOT, sys.executable, __file__, "--bare-child", server.base_url,
                             bot.user_id, bot.device_id, bot.access_token],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the bare bot did not start")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def bare_bot(homeserver: str, user_id: str, device_id: str, token: str) -> None:
    """Answer each ``!liaison`` message at once with a fixed notice (joins invites)."""
    import nio

    client = nio.AsyncClient(homeserver, user_id, device_id=device_id)
    client.access_token, client.user_id = token, user_id
    only = {"presence": {"not_types": ["*"]}, "account_data": {"not_types": ["*"]},
            "room": {"timeline": {"limit": 50}}}
    resp = await client.sync(timeout=0, sync_filter=only)
    assert isinstance(resp, nio.SyncResponse), resp
    for room_id in resp.rooms.invite:
        await client.join(room_id)
    token_ = resp.next_batch
    print("ready", flush=True)
    sent = 0
    try:
        while True:
            resp = await client.sync(timeout=30_000, since=token_, sync_filter=only)
            if not isinstance(resp, nio.SyncResponse):
                continue
            token_ = resp.next_batch
            for room_id in resp.rooms.invite:
                await client.join(room_id)
            for room_id, info in resp.rooms.join.items():
                for event in info.timeline.events:
                    body = getattr(event, "body", "")
                    if event.sender != user_id and body.startswith("!liaison"):
                        sent += 1
                        await client.room_send(room_id, "m.room.message",
                                               {"msgtype": "m.notice", "body": f"re {body}"},
                                               tx_id=f"bare-{sent}")
    finally:
        await client.close()


class Watch:
    """The partner's one long-polling /sync loop (as in ``own_echo_latency``): when each
    timeline event (decrypted when it can be) first arrived, for the rounds to wait on."""

    def __init__(self, alice: PartnerClient) -> None:
        self.client = alice.client
        self.events: list[tuple[float, str, Any]] = []
        self.changed = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        from nio import SyncResponse

        while True:
            resp = await self.client.sync(timeout=30_000, sync_filter=SYNC_FILTER)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                raise RuntimeError(f"sync failed: {resp}")
            for room_id, info in resp.rooms.join.items():
                self.events += [(now, room_id, ev) for ev in info.timeline.events]
            async with self.changed:
                self.changed.notify_all()

    def __enter__(self) -> Watch:
        self.task = asyncio.ensure_future(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()

    async def arrival(self, match: Callable[[str, Any], bool]) -> float:
        """When the first event ``match`` accepts arrived (waits up to a minute)."""
        def found() -> float | None:
            for at, room_id, ev in self.events:
                if match(room_id, ev):
                    return at
            return None

        async with asyncio.timeout(60), self.changed:
            while (at := found()) is None:
                if self.task is not None and self.task.done():
                    self.task.result()
                await self.changed.wait()
        return at


async def _joined(alice: PartnerClient, room: str, user_id: str) -> None:
    """Commands sent before the bot's join are never read: wait for it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        members = getattr(await alice.client.joined_members(room), "members", [])
        if any(member.user_id == user_id for member in members):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{user_id} did not join {room}")


async def _rounds(alice: PartnerClient, n: int, floor_room: str,
                  bots: dict[str, tuple[str, str]]) -> dict[str, list[float]]:
    """n rounds; each measures the own echo, then each bot (name → room, user id) once, so
    a change of load on the shared machine lands on all of them alike."""
    from nio import RoomSendResponse

    client = alice.client
    for room in (floor_room, *(room for room, _ in bots.values())):
        await alice.prepare_encrypted_send(room)
    results: dict[str, list[float]] = {FLOOR: [], **{name: [] for name in bots}}

    async def send(room: str, body: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        resp = await client.room_send(room, "m.room.message", {"msgtype": "m.text",
                                                               "body": body},
                                      ignore_unverified_devices=True)
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"send failed: {resp}")
        return t0, resp.event_id

    def answer(room: str, bot_id: str, tag: str) -> Callable[[str, Any], bool]:
        return lambda r, ev: (r == room and ev.sender == bot_id
                              and tag in (getattr(ev, "body", "") or ""))

    async def ask(room: str, bot_id: str, tag: str) -> float:
        t0, _ = await send(room, f"!liaison list {tag}")
        return await watch.arrival(answer(room, bot_id, tag)) - t0

    # After each measurement the bots get SETTLE seconds to finish what follows a reply (the
    # record of the delivery, the next long poll), so that work is not billed to whatever is
    # measured next.
    with Watch(alice) as watch:
        for name, (room, bot_id) in bots.items():
            await ask(room, bot_id, f"{name[:4].upper()}-WARMUP")
        for i in range(n):
            t0, event_id = await send(floor_room, f"echo {i}")

            def echo(_room: str, ev: Any, e: str = event_id) -> bool:
                return bool(ev.event_id == e)

            results[FLOOR].append(await watch.arrival(echo) - t0)
            await asyncio.sleep(SETTLE)
            for name, (room, bot_id) in bots.items():
                results[name].append(await ask(room, bot_id, f"{name[:4].upper()}-{i}"))
                await asyncio.sleep(SETTLE)
    return results


@contextlib.asynccontextmanager
async def _in_process_bot(server: SynapseServer, bot: RegisteredUser, room: str, member: str,
                          folder: Path, encrypted: bool) -> AsyncIterator[None]:
    from test_matrix_helpers import office, running_bot, settings_for

    settings = settings_for(server, bot, folder, offices=[office("icc", room, [member])],
                            exclude_insecure_devices=encrypted)
    async with running_bot(settings, bot, poll_ms=30_000):
        yield


async def bench(server: SynapseServer, n: int, encrypted: bool = False,
                in_process: bool = False) -> dict[str, list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    bot = await register_bot(server)
    user = await server.register("bench-alice")
    await server.override_ratelimit(user.user_id)
    alice = await PartnerClient.login(server, user, tmp / "alice", encrypted=encrypted)
    if encrypted:
        from liaisonbot.chat.matrix.crosssigning import CrossSigning

        await CrossSigning(alice.client, data_dir=str(tmp / "alice-keys"),
                           pickle_key="bench").ensure()
    room = await alice.create_room("bench", encrypted=encrypted, invite=[bot.user_id])
    floor_room = await alice.create_room("floor", encrypted=encrypted)
    bots = {"liaisonbot": (room, bot.user_id)}
    try:
        async with contextlib.AsyncExitStack() as stack:
            if not encrypted:
                bare = await register_bot(server)
                bare_room = await alice.create_room("bare", encrypted=False,
                                                    invite=[bare.user_id])
                stack.enter_context(bare_bot_process(server, bare))
                await _joined(alice, bare_room, bare.user_id)
                bots["bare nio bot"] = (bare_room, bare.user_id)
            if in_process:
                await stack.enter_async_context(
                    _in_process_bot(server, bot, room, user.user_id, tmp, encrypted))
            else:
                stack.enter_context(bot_process(server, bot, room, user.user_id, tmp,
                                                encrypted=encrypted))
            await _joined(alice, room, bot.user_id)
            return await _rounds(alice, n, floor_room, bots)
    finally:
        await alice.close()


def report(results: dict[str, list[float]]) -> None:
    floor = results[FLOOR]
    for name, values in results.items():
        print(f"{name:18} n={len(values)} p50={_pct(values, .5) * 1000:7.1f} ms "
              f"p99={_pct(values, .99) * 1000:7.1f} ms "
              f"mean={statistics.mean(values) * 1000:7.1f} ms  "
              f"ratio p50 {_pct(values, .5) / _pct(floor, .5):.2f}x "
              f"p99 {_pct(values, .99) / _pct(floor, .99):.2f}x")
    if "bare nio bot" in results:
        bot, bare = results["liaisonbot"], results["bare nio bot"]
        print(f"liaisonbot over the bare bot: p50 +{(_pct(bot, .5) - _pct(bare, .5)) * 1000:.1f}"
              f" ms ({_pct(bot, .5) / _pct(bare, .5):.2f}x)")


def main() -> None:
    if sys.argv[1:2] == ["--bare-child"]:
        asyncio.run(bare_bot(*sys.argv[2:6]))
        return
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 200
    flags = set(sys.argv[1:])
    if "--pin" in flags:
        last = os.cpu_count() or 1
        if last < 2:
            raise SystemExit("--pin needs two CPUs")
        PIN_BOT[:] = ["taskset", "-c", str(last - 1)]
        os.sched_setaffinity(0, set(range(last - 1)))  # Synapse inherits it
    with SynapseServer() as server:
        results = asyncio.run(bench(server, n, encrypted="--encrypted" in flags,
                                    in_process="--in-process" in flags))
    report(results)


if __name__ == "__main__":
    main()
