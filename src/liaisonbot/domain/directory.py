"""The offices of a deployment, the rooms bound to them, and the policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from liaisonbot.domain.instruments import Instrument
from liaisonbot.domain.model import Office, Policy
from liaisonbot.domain.refs import same_slack_ref


@dataclass(frozen=True)
class Directory:
    offices: tuple[Office, ...]
    policy: Policy = field(default_factory=Policy)
    #: ``[instruments.NAME]`` profiles, by slug (``open … via:NAME``).
    instruments: dict[str, Instrument] = field(default_factory=dict)

    def office(self, slug: str) -> Office | None:
        return next((o for o in self.offices if o.slug == slug), None)

    def office_for_room(self, room: str) -> Office | None:
        """The office a room is bound to (a Slack room matches with or without its team)."""
        for office in self.offices:
            if any(same_slack_ref(bound, room) for bound in office.rooms):
                return office
        return None

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

    def name(self, slug: str) -> str:
        office = self.office(slug)
        return office.name if office else slug
