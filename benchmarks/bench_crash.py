"""Time from a ``kill -9`` of ``liaisonbot run`` to the first delivery in the affected room.

A real ``liaisonbot run`` (Slack in http mode) posts to FakeSlack on loopback. FakeSlack holds
every ``chat.postMessage`` (a long delay), one signed ``/liaison open`` queues the cards, and
once the outbox row is leased (its delivery in flight) the process is stopped:

* ``clean``  (the floor): SIGTERM, the held post answers 429, the process exits leaving the row
  pending and unleased (made due at once), and a new process is started; figure: exit → first
  post in the requested office's channel: the cost of a restart itself.
* ``crash``: SIGKILL, then a new process at once; figure: kill → first post in that channel.
* ``replica`` (PostgreSQL only): two processes run; the one holding the lease (its instance id
  names its pid) is killed and *not* restarted; figure: kill → the survivor's first post there
  (no restart: the survivor hands back the lease of an owner with no connection left, every
  second).

* ``acked`` (issue 25): the process SIGKILLs itself right after a ``/liaison open`` got its
  200 (``LIAISONBOT_CRASH_AT=acked``), before any work; a new process is started at once;
  figure: the 200 → the command's first card. ``acked-replica`` (PostgreSQL): a second process
  runs all along and is not restarted; figure: the 200 → its card from the survivor.

    .venv/bin/python benchmarks/bench_crash.py [--backend sqlite|postgres|both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from common import backends, finish, fresh_database, table  # noqa: E402
from sqlalchemy import text  # noqa: E402

from liaisonbot.store.db import make_engine  # noqa: E402
from support.fake_slack import FakeSlack, signed_headers, slash_command_body  # noqa: E402

SECRET = "bench-signing-secret"
CONFIG = """
[database]
url = "{url}"
[http]
listen = "127.0.0.1:{port}"
[slack]
enabled = true
api_base_url = "{slack}"
[[offices]]
slug = "icc-otp"
name = "ICC OTP"
timezone = "UTC"
working_hours = "00:00-23:59"
working_days = "Mon-Sun"
rooms = ["slack:C0ICC"]
[[offices]]
slug = "ba-spo"
name = "BA SPO"
timezone = "UTC"
working_hours = "00:00-23:59"
working_days = "Mon-Sun"
rooms = ["slack:C0BA"]
"""


class HoldingSlack(FakeSlack):
    """FakeSlack whose ``chat.postMessage`` can be held: a held call waits until ``release()``
    and then answers 429 without posting (a post in flight when its process dies never lands
    late, and no handler keeps FakeSlack's shutdown waiting)."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = False
        self.retry_after = 1
        self._released = asyncio.Event()

    def hold(self) -> None:
        self.holding = True
        self._released.clear()

    def release(self, retry_after: int = 1, *, refuse: bool = False) -> None:
        """Answer the held calls (429); with ``refuse`` later calls get 429 at once too."""
        self.holding, self.retry_after = refuse, retry_after
        self._released.set()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        if self.holding and request.match_info["method"] == "chat.postMessage":
            await self._released.wait()
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        return await super()._api(request)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Bot:
    """One ``liaisonbot run`` process on its own port."""

    def __init__(self, folder: Path, url: str, slack: FakeSlack, name: str,
                 crash_at: str | None = None) -> None:
        self.port = free_port()
        self.config = folder / f"{name}.toml"
        self.config.write_text(CONFIG.format(url=url, port=self.port, slack=slack.base_url))
        self.log = folder / f"{name}.log"
        env = {**os.environ, "LIAISONBOT_SLACK_SIGNING_SECRET": SECRET,
               "LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test", "LIAISONBOT_DRAIN_SECONDS": "1",
               "PYTHONPATH": str(ROOT / "src"),
               **({"LIAISONBOT_CRASH_AT": crash_at} if crash_at else {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "liaisonbot.cli", "run", "--config",
                                      str(self.config)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    async def healthy(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                await asyncio.to_thread(urllib.request.urlopen,
                                        f"http://127.0.0.1:{self.port}/livez", timeout=1)
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError(f"bot did not come up; see {self.log}")

    async def open(self, n: int, slack: FakeSlack) -> None:
        body = slash_command_body(text=f"open C-{n} to:ba-spo Records {n}", user_id="U0ALICE",
                                  channel_id="C0ICC", team_id="T0DEFAULT",
                                  response_url=slack.response_url(f"r{n}"))
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{self.port}/slack/events", data=body,
                headers=signed_headers(SECRET, body)) as response:
            assert response.status == 200, response.status

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


async def leased_owner(url: str, room: str, within: float = 30) -> str:
    """Wait until ``room``'s outbox row is leased; its owner's instance id."""
    engine = make_engine(url)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with engine.connect() as conn:
                owner = (await conn.execute(text(
                    "SELECT lease_owner FROM outbox WHERE room = :room AND status = 'pending' "
                    "AND lease_owner IS NOT NULL"), {"room": room})).scalar()
            if owner:
                return str(owner)
            await asyncio.sleep(0.02)
        raise RuntimeError(f"no lease on {room} within {within}s")
    finally:
        await engine.dispose()


async def due_now(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE outbox SET next_attempt_at = created_at, "
                                    "lease_until = NULL, lease_owner = NULL "
                                    "WHERE status = 'pending'"))
    finally:
        await engine.dispose()


async def first_post(slack: FakeSlack, channel: str, since: float, within: float = 180) -> float:
    await slack.wait_for(lambda: slack.messages(channel), timeout=within)
    return time.monotonic() - since


async def acked_round(backend: str, scenario: str) -> float:
    """Killed right after the 200 of a command; the command's card from the next process."""
    async with fresh_database(backend) as db, HoldingSlack() as slack:
        folder = Path(tempfile.mkdtemp(prefix="liaisonbot_crash_"))
        bots = [Bot(folder, db.url, slack, "first", crash_at="acked")]
        if scenario == "acked-replica":
            bots.append(Bot(folder, db.url, slack, "second"))
        try:
            for bot in bots:
                await bot.healthy()
            await bots[0].open(1, slack)  # answered 200, then the process is gone
            since = time.monotonic()
            await asyncio.to_thread(bots[0].proc.wait, 30)
            if scenario == "acked":
                bots.append(Bot(folder, db.url, slack, "restarted"))
            return await first_post(slack, "C0BA", since)
        finally:
            for bot in bots:
                bot.stop()


async def one_round(backend: str, scenario: str) -> float:
    if scenario.startswith("acked"):
        return await acked_round(backend, scenario)
    async with fresh_database(backend) as db, HoldingSlack() as slack:
        folder = Path(tempfile.mkdtemp(prefix="liaisonbot_crash_"))
        bots = [Bot(folder, db.url, slack, "first")]
        if scenario == "replica":
            bots.append(Bot(folder, db.url, slack, "second"))
        try:
            for bot in bots:
                await bot.healthy()
            slack.hold()  # every post hangs: deliveries in flight
            await bots[0].open(1, slack)
            owner = await leased_owner(db.url, "slack:C0BA")
            if scenario == "clean":
                bots[0].proc.send_signal(signal.SIGTERM)
                # The round in flight ends (429), and nothing goes out before the exit.
                slack.release(retry_after=60, refuse=True)
                await asyncio.to_thread(bots[0].proc.wait, 60)
                await due_now(db.url)  # what is left is due and unleased: a pure restart
                since = time.monotonic()
            else:
                victim = next((b for b in bots if f"-{b.proc.pid}-" in owner), bots[0])
                victim.proc.send_signal(signal.SIGKILL)
                since = time.monotonic()
                await asyncio.to_thread(victim.proc.wait, 30)
                bots.remove(victim)
                bots.append(victim)  # stopped again at the end (a no-op)
            slack.release()
            if scenario != "replica":
                bots.append(Bot(folder, db.url, slack, "restarted"))
            return await first_post(slack, "C0BA", since)
        finally:
            for bot in bots:
                bot.stop()


async def main(args: argparse.Namespace) -> None:
    results: dict[str, Any] = {"rounds": args.rounds}
    rows = []
    for backend in backends(args.backend):
        scenarios = ["clean", "crash", "acked"] + (
            ["replica", "acked-replica"] if backend == "postgres" else [])
        figures: dict[str, list[float]] = {s: [] for s in scenarios}
        for _ in range(args.rounds):
            for scenario in scenarios:
                figures[scenario].append(await one_round(backend, scenario))
                print(f"{backend} {scenario}: {figures[scenario][-1]:.2f} s", flush=True)
        floor = statistics.median(figures["clean"])
        for scenario, values in figures.items():
            median = statistics.median(values)
            rows.append((backend, scenario, median, max(values), median / floor))
            results[f"{backend}_{scenario}_s"] = values
    print("stop → first post in the affected room after restart (s), "
          f"{args.rounds} rounds; floor = clean restart")
    table(rows, ("backend", "scenario", "median s", "max s", "× floor"))
    finish("crash", results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
