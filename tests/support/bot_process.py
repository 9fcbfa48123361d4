"""Real ``liaisonbot run`` processes for tests: Slack against a FakeSlack on loopback.

``BotProcess`` writes a config (two offices on Slack channels ``C0ICC`` and ``C0BA``, open around
the clock), starts ``python -m liaisonbot.cli run`` with the Slack secrets in its environment
(and ``LIAISONBOT_CRASH_AT`` when asked: ``liaisonbot.crashpoint``), logs to a file beside the
config, and waits for it with ``support.poll.eventually``. The subprocess imports this
checkout's code (``conftest`` leads PYTHONPATH with its ``src``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from liaisonbot.store.db import make_engine
from support.fake_slack import FakeSlack, signed_headers, slash_command_body
from support.poll import eventually

ROOT = Path(__file__).resolve().parents[2]
SECRET = "crash-test-signing-secret"
APP_TOKEN = "xapp-crash-test"
CONFIG = """
[database]
url = "{url}"
[http]
listen = "127.0.0.1:{port}"
[slack]
enabled = true
mode = "{mode}"
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class BotProcess:
    """One ``liaisonbot run`` on its own port."""

    def __init__(self, folder: Path, name: str, *, url: str, slack: FakeSlack,
                 mode: str = "http", crash_at: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.port = free_port()
        self.config = folder / f"{name}.toml"
        self.config.write_text(CONFIG.format(url=url, port=self.port, mode=mode,
                                             slack=slack.base_url))
        self.log = folder / f"{name}.log"
        extra = {"LIAISONBOT_CRASH_AT": crash_at} if crash_at else {}
        environment = {**{k: v for k, v in os.environ.items() if k != "LIAISONBOT_CRASH_AT"},
                       "LIAISONBOT_SLACK_SIGNING_SECRET": SECRET,
                       "LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test",
                       "LIAISONBOT_SLACK_APP_TOKEN": APP_TOKEN,
                       "LIAISONBOT_LOG_LEVEL": "INFO", **extra, **(env or {})}
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "liaisonbot.cli", "run", "--config", str(self.config)],
                cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def _health(self) -> dict[str, Any] | None:
        import json

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=1) as answer:
                return json.loads(answer.read())  # type: ignore[no-any-return]
        except OSError:
            return None

    async def health(self) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._health)

    async def up(self, within: float = 60) -> dict[str, Any]:
        """Wait until ``/healthz`` answers (any status): the HTTP server and its workers run."""
        async def answered() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: "
                                     f"{self.log.read_text()[-2000:]}")
            return await self.health()

        return await eventually(answered, timeout=within, interval=0.1,
                                what=f"{self.name} answering /healthz")

    async def command(self, slack: FakeSlack, text_: str, reply: str, *,
                      user: str = "U0ALICE", channel: str = "C0ICC") -> int | None:
        """A signed ``/liaison`` command; its status, or None when no answer came (the
        process died before it answered)."""
        body = slash_command_body(text=text_, user_id=user, channel_id=channel,
                                  team_id="T0DEFAULT", response_url=slack.response_url(reply))
        try:
            async with aiohttp.ClientSession() as session, session.post(
                    self.url, data=body, headers=signed_headers(SECRET, body),
                    timeout=aiohttp.ClientTimeout(total=30)) as answer:
                await answer.read()
                return answer.status
        except aiohttp.ClientError:
            return None

    async def exited(self, within: float = 30) -> int:
        return await asyncio.to_thread(self.proc.wait, within)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


async def scalar(url: str, sql: str, **params: Any) -> Any:
    """One value read from the bot's database."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar()
    finally:
        await engine.dispose()


async def nothing_pending(url: str) -> bool:
    """No inbox row and no outbox entry waits: whatever is owed has been done."""
    return not await scalar(url, "SELECT (SELECT count(*) FROM inbox WHERE status = 'pending')"
                                 " + (SELECT count(*) FROM outbox WHERE status = 'pending')")
