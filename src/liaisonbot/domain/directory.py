"""The offices of a deployment, the rooms bound to them, and the policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from liaisonbot.domain.deadlines import bound as bound_by
from liaisonbot.domain.instruments import Instrument
from liaisonbot.domain.model import Office, Policy
from liaisonbot.domain.refs import same_slack_ref

#: How many rooms ``office_for_room`` remembers (the config's rooms, and the DMs and unbound
#: rooms commands come from): the memo is dropped when it grows past this.
_ROOMS_REMEMBERED = 4096


@dataclass(frozen=True)
class Directory:
    offices: tuple[Office, ...]
    policy: Policy = field(default_factory=Policy)
    #: ``[instruments.NAME]`` profiles, by slug (``open … via:NAME``).
    instruments: dict[str, Instrument] = field(default_factory=dict)

    def office(self, slug: str) -> Office | None:
        return self._by_slug.get(slug)

    def listing(self, parties: tuple[str, str], user: str) -> Office | None:
        """The party office (of ``parties``, requesting first) whose member list names
        ``user`` (one identity: ``refs.same_user``); None when neither does."""
        return next((o for o in map(self.office, parties) if o and o.is_member(user)), None)

    @cached_property
    def _by_slug(self) -> dict[str, Office]:
        found: dict[str, Office] = {}
        for office in self.offices:
            found.setdefault(office.slug, office)  # the first of a slug, as a scan finds it
        return found

    @cached_property
    def _room_offices(self) -> dict[str, Office | None]:
        """Rooms already looked up (every command asks several times): bounded."""
        return {}

    def office_for_room(self, room: str) -> Office | None:
        """The office a room is bound to (a Slack room matches with or without its team)."""
        known = self._room_offices
        if room in known:
            return known[room]
        found = next((office for office in self.offices
                      if any(same_slack_ref(bound, room) for bound in office.rooms)), None)
        if len(known) >= _ROOMS_REMEMBERED:
            known.clear()
        known[room] = found
        return found

    def bound_room(self, room: str) -> str | None:
        """The room reference as written in the config, for a room seen on a platform."""
        for office in self.offices:
            for bound in office.rooms:
                if same_slack_ref(bound, room):
                    return bound
        return None

    def accepts_invite(self, room: str, inviter: str) -> bool:
        """Whether the bot joins ``room`` when ``inviter`` invites it: a room bound in the
        config, or any room a listed member of some office invites it to (never anyone's)."""
        return self.bound_room(room) is not None or any(o.is_member(inviter)
                                                        for o in self.offices)

    def receivable(self, office: Office) -> tuple[Instrument, ...]:
        """The instruments ``office`` can receive requests under, in the config's order: an
        instrument with a ``scope`` (``eu``) only when the office's ``country`` is bound by it
        (what ``open`` enforces)."""
        return tuple(i for i in self.instruments.values()
                     if not i.scope or bound_by(i.scope, i.not_bound, office.country))

    def name(self, slug: str) -> str:
        office = self.office(slug)
        return office.name if office else slug
