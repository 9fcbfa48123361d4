"""The board's pure parts: the one need-to-know function, quantiles, the chain check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from conftest import make_settings
from liaisonbot.board.figures import check_entries
from liaisonbot.board.visible import Viewer, field_shown
from liaisonbot.domain.audit import GENESIS, Entry, entry_hash
from liaisonbot.domain.model import Confidentiality, Kind, Request, Status
from liaisonbot.service.ports import HistoryItem
from liaisonbot.service.stats import quantile

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
DIRECTORY = make_settings("sqlite+aiosqlite:///x.db").directory


def request(conf: Confidentiality = Confidentiality.RESTRICTED) -> Request:
    return Request(id=1, case="ICC-01/14", kind=Kind.MLA, requesting="icc-otp",
                   requested="ba-spo", summary="s", status=Status.OPEN, created_at=NOW,
                   due_at=NOW + timedelta(days=3), ack_due_at=NOW, opened_by="console:alice",
                   confidentiality=conf)


def test_field_shown_follows_chat() -> None:
    icc_member = Viewer("a", ("icc-otp",), frozenset({"console:alice"}))
    icc_clerk = Viewer("i", ("icc-otp",), frozenset({"console:ivan"}))
    ba_member = Viewer("b", ("ba-spo",), frozenset({"console:bojan"}))
    ua = Viewer("o", ("ua-pgo",), frozenset({"console:alice"}))  # listed elsewhere: no
    plain, secret = request(), request(Confidentiality.CONFIDENTIAL)
    for field in ("id", "status", "summary", "answer", "notes"):
        assert field_shown(plain, icc_clerk, field, directory=DIRECTORY)
        assert not field_shown(plain, ua, field, directory=DIRECTORY)
        assert not field_shown(secret, ua, field, directory=DIRECTORY)
    for field in ("summary", "basis", "answer", "notes"):
        assert field_shown(secret, icc_member, field, directory=DIRECTORY)
        assert field_shown(secret, ba_member, field, directory=DIRECTORY)  # other party's member
        assert not field_shown(secret, icc_clerk, field, directory=DIRECTORY)
    assert field_shown(secret, icc_clerk, "status", directory=DIRECTORY)


def test_quantile_nearest_rank() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([float(i) for i in range(1, 11)], 0.9) == 9.0
    assert quantile([5.0], 0.9) == 5.0


def _chain(n: int) -> list[HistoryItem]:
    items, prev = [], GENESIS
    for i in range(1, n + 1):
        entry = Entry(i, 1 if i % 2 else 2, NOW.isoformat(), "console:a", "console", "x", {})
        sealed = entry_hash(prev, entry)
        items.append(HistoryItem(entry, prev, sealed))
        prev = sealed
    return items


def _around(items: list[HistoryItem], request_id: int) -> list[tuple[HistoryItem, str | None,
                                                                     str | None]]:
    by_id = {i.entry.id: i for i in items}
    return [(i, by_id[i.entry.id - 1].hash if i.entry.id > 1 else None,
             by_id[i.entry.id + 1].prev_hash if i.entry.id + 1 in by_id else None)
            for i in items if i.entry.request_id == request_id]


def test_chain_check_for_one_request() -> None:
    items = _chain(5)
    head = (5, items[-1].hash)
    assert check_entries(_around(items, 1), head).ok
    assert check_entries(_around(items, 2), head).ok
    changed = list(items)
    e = items[2].entry
    changed[2] = HistoryItem(Entry(e.id, e.request_id, e.at, "console:mallory", e.platform,
                                   e.action, e.detail), items[2].prev_hash, items[2].hash)
    broken = check_entries(_around(changed, 1), head)
    assert not broken.ok and broken.broken_entry == 3
    assert not check_entries(_around(items, 1), (4, items[3].hash)).ok  # entry 5 is not the head


def test_chain_check_accepts_what_audit_verify_accepts() -> None:
    """An entry sealed before the canonical UTC form (with the clock's offset) verifies on the
    board as it does in ``liaisonbot audit verify``: one rule, ``audit.legacy_sealed``."""
    from liaisonbot.domain.audit import verify

    local = NOW.astimezone(timezone(timedelta(hours=1))).isoformat()
    old = Entry(1, 1, local, "console:a", "console", "opened", {})
    stored = entry_hash(GENESIS, old)
    item = HistoryItem(Entry(1, 1, NOW.isoformat(), "console:a", "console", "opened", {}),
                       GENESIS, stored)  # read back in UTC, as the database returns it
    assert verify([(item.entry, item.prev_hash, item.hash)], (1, stored)) is None
    assert check_entries([(item, None, None)], (1, stored)).ok
