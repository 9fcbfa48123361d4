"""The history's hash chains: each entry seals the one before it.

``entry_hash`` is computed over a canonical JSON form of the entry and the previous entry's
hash, so changing or removing any row breaks every link after it.

Two eras (migration 0005 marks the boundary, ``Seal.legacy_upto``):

* **legacy** entries (ids up to ``legacy_upto``) form one global chain in id order: each links
  to the entry with the id before it, its id sealed too; ``Seal.legacy_hash`` is that chain's
  last hash. Every write locked one head row, which serialised all replicas on it.
* **linked** entries (after it) form one chain *per request*: each links to the previous entry
  of the same request (a request's first entry to ``GENESIS``, a request with legacy entries
  to its last legacy entry), and the request row keeps the hash of its last entry
  (``request.audit_hash``), written in the same statement as the request's own change and
  guarded by its version lock, so writers of different requests never wait for each other.
  The database assigns the id; it is not sealed (``link_hash`` seals the entry with id 0): an
  entry's place is its link. Entries of no request chain among themselves from the legacy
  head, under the head row (``audit_head``: their last id and hash).

``verify`` detects a changed entry (its hash), a removed or inserted entry in a chain (the
next entry's link, or the request's stored last hash for the end of a chain, the head for
entries of no request), and a legacy entry removed anywhere (the ids are consecutive).

Every moment is sealed in one canonical form, ``utc_text``: UTC, ``+00:00``, ISO 8601 as
``datetime.isoformat`` writes it. The store keeps moments as UTC, so a chain verifies whatever
offset the clock had when it was written. Entries sealed before this form existed carried the
clock's own offset (``2026-12-01T10:00:00+01:00``), which the store does not keep: ``verify``
accepts such a legacy entry when it matches the same moment written with some real UTC offset
(−12:00 … +14:00, whole quarter hours), so old databases need no migration.
"""

from __future__ import annotations

import enum
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
    #: The request's stored state after the change (``state_hash``); None for entries
    #: written before migration 0008 (their seal does not include it).
    state: str | None = None

    def canonical(self) -> str:
        body = {"id": self.id, "request_id": self.request_id, "at": self.at, "actor": self.actor,
                "platform": self.platform, "action": self.action, "detail": self.detail}
        if self.state is not None:
            body["state"] = self.state
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          check_circular=False)  # the same text; plain values, no cycles


def entry_hash(prev_hash: str, entry: Entry) -> str:
    return hashlib.sha256(f"{prev_hash}\n{entry.canonical()}".encode()).hexdigest()


def link_hash(prev_hash: str, entry: Entry) -> str:
    """The seal of a linked entry (after the legacy era): its id is the database's, not sealed."""
    return entry_hash(prev_hash, Entry(0, entry.request_id, entry.at, entry.actor,
                                       entry.platform, entry.action, entry.detail, entry.state))


#: Request fields left out of its sealed state: the store's version and what the follow-up
#: tick moves without an entry of its own (nudge counters, the next chase, the one reminder).
VOLATILE = frozenset({"version", "ack_nudges_sent", "answer_nudges_sent",
                      "incomplete_nudges_sent", "next_nudge_at", "eta_reminded"})


#: Fields added by migration 0009: sealed only once they hold something.
ADDED_0009 = frozenset({"events", "extensions", "ack_ref", "ack_contact", "asked_due"})
#: Fields added by migration 0010 (measures, conditions on use): the same.
ADDED_0010 = frozenset({"measures", "conditions"})


#: Fields added by migration 0011 (parallel requests, postponement and consultation): sealed
#: only once they hold something.
ADDED_0011 = frozenset({"parallel_of", "hold_from", "hold_since", "hold_until", "hold_reason"})


def state_hash(request: Any) -> str:
    """SHA-256 over the canonical JSON of a request's fields but ``VOLATILE`` (moments in
    ``utc_text``, enums by value): what each new entry seals as the row after its change."""
    from dataclasses import fields

    body: dict[str, Any] = {}
    for f in fields(request):
        if f.name in VOLATILE:
            continue
        value = getattr(request, f.name)
        if f.name in ADDED_0009 | ADDED_0010 | ADDED_0011 and not value:
            continue  # rows sealed before 0009 had no such field: their seal still holds
        if f.name == "measures":
            value = [measure.as_json() for measure in value]
        elif isinstance(value, datetime):
            value = utc_text(value)
        elif isinstance(value, dict):
            value = {k: utc_text(v) if isinstance(v, datetime) else v
                     for k, v in value.items()}
        elif isinstance(value, enum.Enum):
            value = value.value
        body[f.name] = value
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Seal:
    """Where the legacy global chain ends (migration 0005): its last id and hash."""

    legacy_upto: int
    legacy_hash: str


#: Every entry is legacy: the global chain alone (databases before 0005, and old callers).
ALL_LEGACY = Seal(2**63, GENESIS)


@dataclass(frozen=True)
class Break:
    """The first place where the chain does not hold."""

    entry_id: int | None
    reason: str


def verify(chain: Iterable[tuple[Entry, str, str]], head: tuple[int, str] | None,
           seal: Seal = ALL_LEGACY, tails: dict[int, str] | None = None) -> Break | None:
    """Check ``(entry, prev_hash, hash)`` rows in id order against each other, the head and
    ``tails`` (each request's stored last hash, ``request.audit_hash``; every request that has
    one or has linked entries must match)."""
    expected_prev, last_id = GENESIS, 0
    last: dict[int | None, tuple[int, str]] = {}  # per request: its last entry's id and hash
    legacy_done = False
    for entry, prev_hash, stored_hash in chain:
        if entry.id > seal.legacy_upto:
            if not legacy_done:
                found = _legacy_end(last_id, expected_prev, seal)
                if found:
                    return found
                legacy_done = True
            start = seal.legacy_hash if entry.request_id is None else GENESIS
            before_id, before = last.get(entry.request_id, (0, start))
            if prev_hash != before:
                return Break(entry.id, f"entry {entry.id} does not follow entry {before_id}"
                             if before_id else f"entry {entry.id} does not follow the entry "
                             "before it")
            if link_hash(prev_hash, entry) != stored_hash:
                return Break(entry.id, f"entry {entry.id} was changed after it was written")
            last[entry.request_id] = (entry.id, stored_hash)
            continue
        if entry.id != last_id + 1:
            return Break(last_id + 1, f"entry {last_id + 1} is missing")
        if prev_hash != expected_prev:
            return Break(entry.id, f"entry {entry.id} does not follow entry {last_id}")
        if not legacy_sealed(prev_hash, entry, stored_hash):
            return Break(entry.id, f"entry {entry.id} was changed after it was written")
        expected_prev, last_id = stored_hash, entry.id
        if entry.request_id is not None:  # entries of no request link from the legacy head
            last[entry.request_id] = (entry.id, stored_hash)
    if seal is ALL_LEGACY:
        head_id, head_hash = head if head else (0, GENESIS)
        if head_id != last_id or head_hash != expected_prev:
            return Break(last_id + 1 if head_id > last_id else head_id,
                         f"the chain ends at entry {last_id} but its head says {head_id}")
        return None
    if not legacy_done:
        found = _legacy_end(last_id, expected_prev, seal)
        if found:
            return found
    head_id, head_hash = head if head else (seal.legacy_upto, seal.legacy_hash)
    end_id, end_hash = last.get(None, (seal.legacy_upto, seal.legacy_hash))
    if (head_id, head_hash) != (end_id, end_hash):
        return Break(end_id + 1 if head_id > end_id else head_id,
                     f"the chain ends at entry {end_id} but its head says {head_id}")
    tails = tails or {}
    for rid in sorted(set(tails) | {r for r in last if r is not None}):
        got = last.get(rid)
        if got is None:
            return Break(None, f"the entries of request {rid} are missing")
        if tails.get(rid) != got[1]:
            return Break(got[0], f"the last entry of request {rid} is missing (or one was "
                         "added after it)" if tails.get(rid) else
                         f"request {rid} does not record its last entry {got[0]}")
    return None


def legacy_sealed(prev_hash: str, entry: Entry, stored_hash: str) -> bool:
    """Whether a legacy (global-chain) entry hashes to ``stored_hash``: sealed in the
    canonical UTC form, or the old way with the clock's own offset."""
    return entry_hash(prev_hash, entry) == stored_hash or _legacy_match(prev_hash, entry,
                                                                       stored_hash)


def _legacy_end(last_id: int, last_hash: str, seal: Seal) -> Break | None:
    """The legacy chain must end where migration 0005 sealed it."""
    if last_id < seal.legacy_upto:
        return Break(last_id + 1, f"entry {last_id + 1} is missing")
    if last_hash != seal.legacy_hash:
        return Break(last_id, f"entry {last_id} was changed after it was written")
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
