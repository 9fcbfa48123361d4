"""Pinned identities (trust on first use): the first cross-signing master key the bot sees for
each member is kept; a different one later is *held* until an operator accepts it.

Kept in the database (core ``kv_state``, one key per member: ``matrix:pin:<user id>`` →
``{"master": pinned key, "held": new key or null}``), not in ``data_dir``: it survives a lost
``data_dir`` (which would otherwise silently re-pin everyone), every replica sees the same
pins, and ``liaisonbot matrix trust USER`` changes it through the database while the bot runs.

While a member's identity is held, ``DeviceTrust`` counts none of their devices as
cross-signed: they get no room keys (``m.room_key.withheld``, ``m.unverified``) and the bot
does not act on their messages; each room the member is in is told once; ``/healthz`` lists
the member under ``identity_changed``. ``matrix trust`` makes the held key the pinned one; the
running bot notices at its next sync and queries the member's keys again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PIN_PREFIX = "matrix:pin:"


@dataclass
class Pin:
    master: str
    held: str | None = None

    def dump(self) -> str:
        return json.dumps({"master": self.master, "held": self.held}, sort_keys=True)

    @classmethod
    def load(cls, raw: str | None) -> Pin | None:
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("master"), str):
            return None
        held = data.get("held")
        return cls(str(data["master"]), str(held) if isinstance(held, str) else None)


@dataclass
class Pins:
    """The pins in memory; ``dirty`` users are written by the sync loop (``save``)."""

    pins: dict[str, Pin] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    #: (user, new master key) held since the last time the rooms were told.
    newly_held: list[tuple[str, str]] = field(default_factory=list)

    def held(self) -> dict[str, str]:
        return {user: pin.held for user, pin in self.pins.items() if pin.held}

    def see(self, user_id: str, master: str) -> bool:
        """Record ``user_id``'s current master key; True when it is the pinned one (first
        seen: pinned now), False when it is held."""
        pin = self.pins.get(user_id)
        if pin is None:
            self.pins[user_id] = Pin(master)
            self.dirty.add(user_id)
            return True
        if pin.master == master:
            if pin.held is not None:
                pin.held = None
                self.dirty.add(user_id)
            return True
        if pin.held != master:
            pin.held = master
            self.dirty.add(user_id)
            self.newly_held.append((user_id, master))
        return False

    async def load(self, state: Any) -> None:
        for key, raw in (await state.with_prefix(PIN_PREFIX)).items():
            pin = Pin.load(raw)
            if pin is not None:
                self.pins[key[len(PIN_PREFIX):]] = pin

    async def save(self, state: Any, now: datetime) -> None:
        """Write the dirty pins. A pin changed in the database meanwhile (``matrix trust``
        accepted the key held here) wins over the one in memory."""
        for user_id in sorted(self.dirty):
            mine = self.pins.get(user_id)
            stored = Pin.load(await state.get(PIN_PREFIX + user_id))
            if mine is None:
                continue
            if stored is not None and stored.master != mine.master and stored.held is None \
                    and stored.master == mine.held:
                self.pins[user_id] = stored
                continue
            await state.put(PIN_PREFIX + user_id, mine.dump(), now)
        self.dirty.clear()

    async def accepted(self, state: Any) -> list[str]:
        """Held members whose held key was accepted in the database (``matrix trust``):
        pinned in memory now; returns them (their keys are to be queried again)."""
        done = []
        for user_id, held in self.held().items():
            stored = Pin.load(await state.get(PIN_PREFIX + user_id))
            if stored is not None and stored.master == held:
                self.pins[user_id] = stored
                done.append(user_id)
        return done


async def accept(state: Any, user_id: str, now: datetime) -> str | None:
    """``matrix trust USER``: the held key becomes the pinned one; returns it, or None when
    nothing is held for ``user_id``."""
    pin = Pin.load(await state.get(PIN_PREFIX + user_id))
    if pin is None or pin.held is None:
        return None
    await state.put(PIN_PREFIX + user_id, Pin(pin.held).dump(), now)
    return pin.held
