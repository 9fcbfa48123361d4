"""Shared parts of the case board's tests: a seeded desk, its HTTP server and a signed-in
client (the sign-in goes through the real callback; the issuer is a fake or the real one)."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from aiohttp import web

from conftest import TestBot
from liaisonbot.web import build_web, start_web

SESSION_KEY = "yNp3Zf0cQ3x0Rk1wE6o4m1mJm5b0Z2d2V4c4b3a2Y1U="  # a Fernet key used only in tests
CLIENT_SECRET = "board-test-secret"
CLIENT_ID = "liaisonbot"
#: The test accounts: offices and chat ids as the ID token carries them.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice": {"liaison_offices": ["icc-otp"], "liaison_members": ["console:alice"]},
    "ivan": {"liaison_offices": ["icc-otp"], "liaison_members": ["console:ivan"]},
    "bojan": {"liaison_offices": ["ba-spo"], "liaison_members": ["console:bojan"]},
    "olena": {"liaison_offices": ["ua-pgo"], "liaison_members": ["console:olena"]},
    "nobody": {"liaison_offices": [], "liaison_members": []},
}
CONFIDENTIAL_SUMMARY = "Protected witness W-7 in Prijedor"
BA_UA_SUMMARY = "Phone records between BA and UA only"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def web_config(issuer: str, base_url: str, **more: Any) -> dict[str, Any]:
    return {"enabled": True, "base_url": base_url, "oidc_issuer": issuer,
            "client_id": CLIENT_ID, "office_claim": "liaison_offices",
            "member_claim": "liaison_members", **more}


async def seed(bot: TestBot) -> None:
    """R-1 ICC→BA (acknowledged, answered), R-2 ICC→BA confidential, R-3 BA→UA (other
    offices' business for ICC), R-4 ICC→UA overdue-to-be, in two cases."""
    await bot.exec("!liaison open ICC-01/14 to:ba-spo kind:mla due:10d Bank records of X",
                   user="alice", room="icc")
    await bot.exec(f"!liaison open ICC-01/14 to:ba-spo conf:confidential urgent "
                   f"{CONFIDENTIAL_SUMMARY}", user="alice", room="icc")
    await bot.exec(f"!liaison open OP-2026-017 to:ua-pgo {BA_UA_SUMMARY}", user="bojan",
                   room="ba")
    await bot.exec("!liaison open ICC-01/14 to:ua-pgo due:3d Flight manifests", user="alice",
                   room="icc")
    await bot.exec("!liaison ack R-1 on it", user="bojan", room="ba")
    await bot.exec("!liaison answer R-1 Records attached in the secure channel", user="bojan",
                   room="ba")
    await bot.exec("!liaison ack R-2 working on the protected witness", user="bojan", room="ba")


@dataclass
class Served:
    runner: web.AppRunner
    base: str

    async def close(self) -> None:
        await self.runner.cleanup()


async def serve(bot: TestBot, port: int) -> Served:
    app = build_web(bot.core)
    runner = await start_web(app, "127.0.0.1", port)
    return Served(runner, f"http://127.0.0.1:{port}")


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
