"""References to users, rooms, requests and cases, as the contract spells them.

Users and rooms are kept as canonical strings (``platform:native-id``) so they can be stored,
compared and printed without a lookup; these helpers check and split them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NewType

UserRef = NewType("UserRef", str)
RoomRef = NewType("RoomRef", str)

PLATFORMS = ("slack", "matrix", "console")

_INVISIBLE = "\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
_ROOM_PATTERNS = {
    "slack": re.compile(r"^slack:(?:[A-Z0-9]{2,32}/)?[CGD][A-Z0-9]{1,31}$"),
    # Room versions up to 11 carry ":server"; version 12 ids are opaque ("!Abc…"). Never split them.
    # Opaque, but never holding control, bidi or zero-width characters (they would print).
    "matrix": re.compile(rf"^matrix:![^\s:{_INVISIBLE}]+(?::[^\s{_INVISIBLE}]+)?$"),
    "console": re.compile(r"^console:[A-Za-z0-9_.\-]{1,64}$"),
}
_USER_PATTERNS = {
    "slack": re.compile(r"^slack:(?:[A-Z0-9]{2,32}/)?[UW][A-Z0-9]{1,31}$"),
    "matrix": re.compile(r"^matrix:@[a-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?$"),
    "console": re.compile(r"^console:[A-Za-z0-9_.\-]{1,64}$"),
}
CASE_RE = re.compile(r"^(?=.*[A-Za-z0-9])[A-Za-z0-9/._\-]{1,64}$")
REQUEST_RE = re.compile(r"^(?:[Rr]-)?(?P<n>[0-9]{1,12})$")
#: Request ids live in an ``INTEGER`` column (PostgreSQL: 32 bits): a larger id names nothing.
MAX_REQUEST_ID = 2**31 - 1


def platform_of(ref: str) -> str:
    """The platform part of a user or room reference (``slack``, ``matrix``, ``console``)."""
    return ref.split(":", 1)[0]


def native_id(ref: str) -> str:
    """The platform's own id: ``matrix:!a:b`` → ``!a:b``, ``slack:T1/C2`` → ``C2``."""
    rest = ref.split(":", 1)[1]
    if platform_of(ref) == "slack" and "/" in rest:
        return rest.split("/", 1)[1]
    return rest


def slack_team(ref: str) -> str | None:
    """The team part of a Slack reference written ``slack:TEAM/ID``, else None."""
    rest = ref.split(":", 1)[1]
    return rest.split("/", 1)[0] if "/" in rest else None


def is_room_ref(text: str) -> bool:
    pattern = _ROOM_PATTERNS.get(platform_of(text)) if ":" in text else None
    return bool(pattern and pattern.match(text))


def is_user_ref(text: str) -> bool:
    pattern = _USER_PATTERNS.get(platform_of(text)) if ":" in text else None
    return bool(pattern and pattern.match(text))


def parse_user_ref(text: str) -> UserRef | None:
    """A user reference from what an officer may type: ``slack:U1``, ``<@U1>``, ``@a:b.org``…"""
    text = text.strip()
    slack_mention = re.match(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$", text)
    if slack_mention:
        text = f"slack:{slack_mention.group(1)}"
    elif text.startswith("@") and ":" in text:
        text = f"matrix:{text}"
    return UserRef(text) if is_user_ref(text) else None


def parse_request_id(text: str) -> int | None:
    """``R-7``, ``r-7`` or ``7`` → 7; anything else → None."""
    match = REQUEST_RE.match(text.strip())
    return int(match.group("n")) if match else None


def storable_id(number: int) -> bool:
    """Whether ``number`` can be a request id at all (a larger one is "no such request")."""
    return 0 < number <= MAX_REQUEST_ID


def format_request_id(number: int) -> str:
    return f"R-{number}"


def is_case_ref(text: str) -> bool:
    return bool(CASE_RE.match(text))


def same_user(a: str | None, b: str | None) -> bool:
    """One person? The one identity check (permissions, members, ``mine``, assignments,
    escalation, confidential ``show``). Slack users match with or without their team
    (``slack:U1`` is ``slack:T1/U1``; two different teams are two people); Matrix and console
    references match exactly."""
    return a is not None and b is not None and same_slack_ref(a, b)


def distinct_users(users: Iterable[str]) -> tuple[str, ...]:
    """``users`` in order, each person once (by ``same_user``)."""
    found: list[str] = []
    for user in users:
        if not any(same_user(user, seen) for seen in found):
            found.append(user)
    return tuple(found)


def same_slack_ref(bound: str, seen: str) -> bool:
    """A Slack room/user bound as ``slack:C1`` matches ``slack:T1/C1`` seen from team T1."""
    if bound == seen:
        return True
    if platform_of(bound) != "slack" or platform_of(seen) != "slack":
        return False
    team_b, team_s = slack_team(bound), slack_team(seen)
    same_id = native_id(bound) == native_id(seen)
    return same_id and (team_b is None or team_s is None or team_b == team_s)
