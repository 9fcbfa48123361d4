"""Forwarding (EIO Directive art. 7(6)): the request moves to the competent office, and the
office that forwarded it keeps read access to what it had seen.

What the former office may read is the request as it stood when it forwarded it (a snapshot)
and its history up to and including the forwarding entry (``upto``, a count of entries); the
visibility policy (``domain.visibility``) decides on that snapshot as on any request, since the
former office is its requested party there.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from liaisonbot.domain.measures import from_json_list, to_json_list
from liaisonbot.domain.model import Confidentiality, Kind, Request, Status

_ENUMS: dict[str, type[enum.Enum]] = {"kind": Kind, "status": Status,
                                      "confidentiality": Confidentiality,
                                      "paused_from": Status, "hold_from": Status}
_MOMENT_MAPS = frozenset({"events", "extensions"})


@dataclass(frozen=True)
class Former:
    """An office a request was forwarded away from: what it may still read."""

    request_id: int
    office: str
    at: datetime  # when it forwarded it
    to: str  # the office it forwarded it to
    upto: int  # how many of the request's history entries it may read
    request: Request  # the request as it stood, the former office its requested party


def snapshot(request: Request) -> str:
    """The request as JSON (moments ISO 8601, enums by value)."""
    body: dict[str, Any] = {}
    for f in fields(request):
        value = getattr(request, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        elif f.name in _MOMENT_MAPS:
            value = {k: v.isoformat() for k, v in value.items()}
        elif f.name == "measures":
            value = to_json_list(value)
        body[f.name] = value
    return json.dumps(body, sort_keys=True, ensure_ascii=False)


def from_snapshot(text: str) -> Request:
    """The request a ``snapshot`` was taken of."""
    body = json.loads(text)
    known = {f.name: f for f in fields(Request)}
    values: dict[str, Any] = {}
    for name, value in body.items():
        if name not in known:
            continue
        if name in _ENUMS and value is not None:
            value = _ENUMS[name](value)
        elif name in _MOMENT_MAPS:
            value = {k: datetime.fromisoformat(v) for k, v in (value or {}).items()}
        elif name == "measures":
            value = from_json_list(value)
        elif isinstance(value, str) and "datetime" in str(known[name].type):
            value = datetime.fromisoformat(value)
        values[name] = value
    return Request(**values)
