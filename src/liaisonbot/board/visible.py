"""Need-to-know on the board: every per-field decision goes through ``field_shown``.

Written against today's domain (``Request.is_party``, ``confidential``, ``Office.members``) with
the same rules as chat, so the one visibility policy can replace its body later.
"""

from __future__ import annotations

from dataclasses import dataclass

from liaisonbot.domain.directory import Directory
from liaisonbot.domain.model import Request
from liaisonbot.domain.refs import same_slack_ref

#: Fields a confidential request shows only to the listed members of its two offices.
CONFIDENTIAL_FIELDS = frozenset({"summary", "basis", "answer", "notes"})


@dataclass(frozen=True)
class Viewer:
    """A signed-in board user: the offices the ID token names (known slugs only) and the
    chat ids it names (user refs such as ``matrix:@alice:icc.example``)."""

    subject: str
    offices: tuple[str, ...]
    chat_ids: frozenset[str] = frozenset()


def is_listed_member(request: Request, viewer: Viewer, directory: Directory) -> bool:
    members = [m for slug in (request.requesting, request.requested)
               if (office := directory.office(slug)) for m in office.members]
    return any(same_slack_ref(m, user) for m in members for user in viewer.chat_ids)


def field_shown(request: Request, viewer: Viewer, field: str, *, directory: Directory) -> bool:
    """May ``viewer`` see ``field`` of ``request``? Nothing of a request between other
    offices; a confidential request's text only for the parties' listed members."""
    if not any(request.is_party(office) for office in viewer.offices):
        return False
    if field in CONFIDENTIAL_FIELDS and request.confidential:
        return is_listed_member(request, viewer, directory)
    return True
