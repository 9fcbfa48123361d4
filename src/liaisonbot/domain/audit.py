"""The history's hash chain: each entry seals the one before it.

``entry_hash`` is computed over a canonical JSON form of the entry and the previous entry's
hash, so changing or removing any row breaks every link after it; the head hash kept beside
the chain catches a removed last entry.

Every moment is sealed in one canonical form, ``utc_text``: UTC, ``+00:00``, ISO 8601 as
``datetime.isoformat`` writes it. The store keeps moments as UTC, so a chain verifies whatever
offset the clock had when it was written. Entries sealed before this form existed carried the
clock's own offset (``2026-12-01T10:00:00+01:00``), which the store does not keep: ``verify``
accepts such a legacy entry when it matches the same moment written with some real UTC offset
(−12:00 … +14:00, whole quarter hours), so old databases need no migration.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

GENESIS = "0" * 64
#: Offsets a legacy entry may have been sealed with: every quarter hour from −12:00 to +14:00.
_LEGACY_OFFSETS = tuple(timedelta(minutes=15 * q) for q in range(-48, 57) if q)


def utc_text(moment: datetime) -> str:
    """The canonical sealed form of a moment: aware, converted to UTC, ``isoformat()``."""
    if moment.tzinfo is None:
        raise ValueError("a sealed moment must carry its time zone")
    return moment.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class Entry:
    """One history entry as it is sealed."""

    id: int
    request_id: int | None
    at: str  # ISO 8601 in UTC: utc_text()
    actor: str
    platform: str
    action: str
    detail: dict[str, Any]

    def canonical(self) -> str:
        body = {"id": self.id, "request_id": self.request_id, "at": self.at, "actor": self.actor,
                "platform": self.platform, "action": self.action, "detail": self.detail}
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(f"{prev_hash}\n{entry.canonical()}".encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    """The first place where the chain does not hold."""

    entry_id: int | None
    reason: str


def verify(chain: Iterable[tuple[Entry, str, str]], head: tuple[int, str] | None) -> Break | None:
    """Check ``(entry, prev_hash, hash)`` rows in id order against each other and the head."""
    expected_prev, last_id = GENESIS, 0
    for entry, prev_hash, stored_hash in chain:
        if entry.id != last_id + 1:
            return Break(last_id + 1, f"entry {last_id + 1} is missing")
        if prev_hash != expected_prev:
            return Break(entry.id, f"entry {entry.id} does not follow entry {last_id}")
        if entry_hash(prev_hash, entry) != stored_hash and not _legacy_match(
                prev_hash, entry, stored_hash):
            return Break(entry.id, f"entry {entry.id} was changed after it was written")
        expected_prev, last_id = stored_hash, entry.id
    head_id, head_hash = head if head else (0, GENESIS)
    if head_id != last_id or head_hash != expected_prev:
        return Break(last_id + 1 if head_id > last_id else head_id,
                     f"the chain ends at entry {last_id} but its head says {head_id}")
    return None


def _legacy_match(prev_hash: str, entry: Entry, stored_hash: str) -> bool:
    """True when ``entry`` was sealed the old way: its moment with the clock's own offset."""
    try:
        moment = datetime.fromisoformat(entry.at)
    except ValueError:
        return False
    for offset in _LEGACY_OFFSETS:
        try:
            local = moment.astimezone(timezone(offset)).isoformat()
        except OverflowError:
            continue
        if entry_hash(prev_hash, Entry(entry.id, entry.request_id, local, entry.actor,
                                       entry.platform, entry.action, entry.detail)) == stored_hash:
            return True
    return False
