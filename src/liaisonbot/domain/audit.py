"""The history's hash chain: each entry seals the one before it.

``entry_hash`` is computed over a canonical JSON form of the entry and the previous entry's
hash, so changing or removing any row breaks every link after it; the head hash kept beside
the chain catches a removed last entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Entry:
    """One history entry as it is sealed."""

    id: int
    request_id: int | None
    at: str  # ISO 8601, UTC
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
        if entry_hash(prev_hash, entry) != stored_hash:
            return Break(entry.id, f"entry {entry.id} was changed after it was written")
        expected_prev, last_id = stored_hash, entry.id
    head_id, head_hash = head if head else (0, GENESIS)
    if head_id != last_id or head_hash != expected_prev:
        return Break(last_id + 1 if head_id > last_id else head_id,
                     f"the chain ends at entry {last_id} but its head says {head_id}")
    return None
