"""The weekly report: figures checked against a constructed history, and its posting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import make_settings, start_bot
from liaisonbot.domain.audit import Entry
from liaisonbot.domain.model import Kind, Request, Status
from liaisonbot.service.reports import weekly_figures

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _request(n: int, *, to: str, status: Status, due_days: int) -> Request:
    return Request(id=n, case="C-1", kind=Kind.MLA, requesting="icc-otp", requested=to,
                   summary="s", status=status, created_at=T0, updated_at=T0,
                   due_at=T0 + timedelta(days=due_days), ack_due_at=T0 + timedelta(days=5),
                   opened_by="console:alice")


def _entry(n: int, action: str, hours: float) -> Entry:
    return Entry(0, n, (T0 + timedelta(hours=hours)).isoformat(), "x", "console", action, {})


def test_weekly_figures_from_a_constructed_history() -> None:
    requests = [
        _request(1, to="ba-spo", status=Status.CLOSED, due_days=10),      # acked 4 h, answered day 5
        _request(2, to="ba-spo", status=Status.ANSWERED, due_days=3),     # acked 10 h, answered day 6: late
        _request(3, to="ba-spo", status=Status.ACKNOWLEDGED, due_days=2),  # acked 24 h, overdue
        _request(4, to="ua-pgo", status=Status.OPEN, due_days=30),
    ]
    histories = {
        1: [_entry(1, "acknowledged", 4), _entry(1, "answered", 120), _entry(1, "closed", 130)],
        2: [_entry(2, "acknowledged", 10), _entry(2, "answered", 144)],
        3: [_entry(3, "acknowledged", 24)],
        4: [],
    }
    rows = weekly_figures("icc-otp", requests, histories, now=T0 + timedelta(days=7))
    ba, ua = rows
    assert (ba.partner, ba.open, ba.overdue) == ("ba-spo", 1, 1)
    assert ba.median_ack_hours == 10.0
    assert ba.median_answer_days == 5.5
    assert (ba.answered, ba.on_time, ba.on_time_share) == (2, 1, 0.5)
    assert (ua.partner, ua.open, ua.overdue, ua.median_ack_hours, ua.answered) == \
        ("ua-pgo", 1, 0, None, 0)


async def test_weekly_report_posted_once_on_monday_opening(sqlite_url: str) -> None:
    bot = await start_bot(make_settings(sqlite_url, reports={"weekly": ["ba-spo"]}))
    try:
        await bot.exec("!liaison open C-1 to:ba-spo Records", user="alice", room="icc")
        await bot.exec("!liaison ack R-1", user="bojan", room="ba")
        start = len(bot.out)
        await bot.console.advance_to(datetime(2026, 12, 8, 12, tzinfo=UTC))
        out = "\n".join(bot.out[start:])
        assert out.count("Weekly report for BA SPO") == 1  # Mon 7 Dec, 08:00 Sarajevo
        assert "[console:ba] Weekly report for BA SPO" in out
        assert "with icc-otp: 1 open, 0 overdue; median time to acknowledge 0.0 h" in out
        assert "Weekly report for ICC OTP" not in out  # not opted in
    finally:
        await bot.core.close()


def test_csv_cells_get_a_quote_only_when_they_start_like_a_formula() -> None:
    from liaisonbot.service.reports import _csv_safe

    row = {"summary": "=HYPERLINK(1)", "assignee": "", "eta": None, "case": "ICC-1", "n": 3,
           "basis": "-1", "note": "@x"}
    assert _csv_safe(row) == {"summary": "'=HYPERLINK(1)", "assignee": "", "eta": None,
                              "case": "ICC-1", "n": 3, "basis": "'-1", "note": "'@x"}


async def test_weekly_report_reads_the_history_in_one_query(sqlite_url: str) -> None:
    """No N+1: the report over many requests reads their history in one statement."""
    from sqlalchemy import event

    bot = await start_bot(make_settings(sqlite_url, reports={"weekly": ["ba-spo"]}))
    try:
        for n in range(6):
            await bot.exec(f"!liaison open C-{n} to:ba-spo Records", user="alice", room="icc")
            await bot.exec(f"!liaison ack R-{n + 1}", user="bojan", room="ba")
        history_reads: list[str] = []

        def seen(_c: object, _cur: object, statement: str, *_: object) -> None:
            if statement.lstrip().upper().startswith("SELECT") and "FROM history" in statement:
                history_reads.append(statement)

        event.listen(bot.core.engine.sync_engine, "before_cursor_execute", seen)
        queued = await bot.core.ticker.reports(datetime(2026, 12, 7, 8, 30, tzinfo=UTC))
        assert queued >= 1
        assert len(history_reads) == 1
    finally:
        await bot.core.close()
