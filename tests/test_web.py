"""/healthz and /metrics of a running core, scraped over real HTTP on loopback."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import aiohttp
import pytest

from conftest import TestBot
from liaisonbot.web import build_web, start_web


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


async def serve(bot: TestBot, checks: dict | None = None) -> tuple[object, int]:  # type: ignore[type-arg]
    runner = await start_web(build_web(bot.core, checks), "127.0.0.1", 0)
    port = runner.addresses[0][1]  # type: ignore[attr-defined]
    return runner, port


async def test_metrics_count_commands_deliveries_and_overdue(testbot: TestBot) -> None:
    await testbot.exec("!liaison open C-1 to:ba-spo due:2026-12-02 X", user="alice", room="icc")
    await testbot.exec("!liaison frob", user="alice", room="icc")
    testbot.clock.set(datetime(2026, 12, 3, 10, tzinfo=UTC))
    await testbot.console.settle()
    runner, port = await serve(testbot)
    try:
        status, body = await _get(port, "/metrics")
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
    assert status == 200
    assert 'liaisonbot_commands_total{outcome="ok",platform="console",verb="open"} 1.0' in body
    assert 'liaisonbot_commands_total{outcome="refused",platform="console",verb="invalid"} 1.0' in body
    assert 'liaisonbot_overdue_requests{office="ba-spo"} 1.0' in body
    assert 'liaisonbot_deliveries_total{outcome="ok",platform="console"}' in body
    assert "liaisonbot_outbox_backlog 0.0" in body


async def test_healthz_is_503_when_a_part_is_down(testbot: TestBot) -> None:
    async def down() -> dict[str, object]:
        return {"ok": False, "error": "ConnectionRefused"}

    runner, port = await serve(testbot, {"matrix": down})
    try:
        status, body = await _get(port, "/healthz")
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
    assert status == 503 and '"matrix": {"ok": false' in body and '"database": {"ok": true' in body


async def test_logs_carry_no_summary_or_secret(testbot: TestBot,
                                              caplog: pytest.LogCaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISONBOT_SLACK_SIGNING_SECRET", "s3cr3t-signing")
    caplog.set_level(logging.DEBUG, logger="liaisonbot")
    await testbot.exec("!liaison open C-1 to:ba-spo conf:confidential Identity of W-17",
                       user="alice", room="icc")
    await testbot.exec("!liaison answer R-1 The witness is John Roe", user="bojan", room="ba")
    from liaisonbot.logs import JsonFormatter

    lines = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("liaisonbot")]
    joined = "\n".join(lines)
    assert '"verb": "open"' in joined and '"request": "R-1"' in joined
    assert '"msg": "delivered"' in joined
    assert "W-17" not in joined and "John Roe" not in joined and "s3cr3t" not in joined


async def test_livez_answers_even_when_a_part_is_down(testbot: TestBot) -> None:
    async def down() -> dict[str, object]:
        return {"ok": False}

    runner, port = await serve(testbot, {"slack": down})
    try:
        assert (await _get(port, "/livez"))[0] == 200
        assert (await _get(port, "/healthz"))[0] == 503
    finally:
        await runner.cleanup()  # type: ignore[attr-defined]
