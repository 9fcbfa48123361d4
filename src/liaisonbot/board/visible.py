"""Need-to-know on the board: every per-field decision goes through ``field_shown``, which
asks the one visibility policy (``domain.visibility``) with the board's audience: the viewer's
party office, and whether the viewer is a listed member of either party (by the chat ids the ID
token names, compared with ``refs.same_user``).
"""

from __future__ import annotations

from dataclasses import dataclass

from liaisonbot.domain.directory import Directory
from liaisonbot.domain.model import Request
from liaisonbot.domain.visibility import Audience, Place, shows


@dataclass(frozen=True)
class Viewer:
    """A signed-in board user: the offices the ID token names (known slugs only) and the
    chat ids it names (user refs such as ``matrix:@alice:icc.example``)."""

    subject: str
    offices: tuple[str, ...]
    chat_ids: frozenset[str] = frozenset()


def is_listed_member(request: Request, viewer: Viewer, directory: Directory) -> bool:
    """Whether one of the chat ids the viewer's token names is on a party's member list."""
    parties = (request.requesting, request.requested)
    return any(directory.listing(parties, user) for user in viewer.chat_ids)


def audience(request: Request, viewer: Viewer, office: str | None,
             directory: Directory) -> Audience:
    """The viewer's standing on ``request`` as the visibility policy takes it: the board, for
    ``office`` (the party office whose board is open), listed member of a party or not."""
    return Audience(Place.BOARD, office, member=is_listed_member(request, viewer, directory))


def field_shown(request: Request, viewer: Viewer, field: str, *, directory: Directory) -> bool:
    """May ``viewer`` see ``field`` of ``request``? Nothing of a request between other
    offices; a confidential request's substance only for the parties' listed members."""
    office = next((o for o in viewer.offices if request.is_party(o)), None)
    if office is None:
        return False
    return shows(request, audience(request, viewer, office, directory), field)
