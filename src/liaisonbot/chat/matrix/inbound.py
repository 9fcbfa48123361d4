"""Native Matrix events → what the desk should hear (a command, a thread message, or nothing)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

PREFIX = "!liaison"
_TEXT_TYPES = ("m.text", "m.emote")


@dataclass(frozen=True)
class Inbound:
    """One event the desk cares about."""

    kind: Literal["command", "relay"]
    text: str
    thread_root: str | None


def server_of(user_id: str) -> str:
    """``@alice:example.org`` → ``example.org`` (user ids always carry their server)."""
    return user_id.split(":", 1)[1] if ":" in user_id else ""


def thread_root(content: dict[str, Any]) -> str | None:
    rel = content.get("m.relates_to") or {}
    if rel.get("rel_type") == "m.thread" and isinstance(rel.get("event_id"), str):
        return str(rel["event_id"])
    return None


def strip_reply_fallback(body: str) -> str:
    """Drop the ``> <@who> quoted`` lines old clients put before a reply."""
    lines = body.splitlines()
    if not lines or not lines[0].startswith("> "):
        return body
    while lines and lines[0].startswith(">"):
        lines.pop(0)
    return "\n".join(lines).lstrip("\n")


def command_text(body: str) -> str | None:
    """``!liaison list X`` → ``list X``; None when the body is no command."""
    text = body.strip()
    if not text.lower().startswith(PREFIX):
        return None
    rest = text[len(PREFIX):]
    if rest and not rest[0].isspace():
        return None  # "!liaisonbot …" is somebody else's bot
    return rest.strip()


def classify(*, sender: str, event_type: str, content: dict[str, Any], own_user: str,
             allowed_servers: Collection[str]) -> Inbound | None:
    """What a (decrypted) room event means for the desk; None for everything it ignores:
    the bot's own events, notices (bots never answer bots), edits, files, other servers."""
    if sender == own_user or event_type != "m.room.message":
        return None
    if content.get("msgtype") not in _TEXT_TYPES or "m.new_content" in content:
        return None
    if (content.get("m.relates_to") or {}).get("rel_type") == "m.replace":
        return None
    if allowed_servers and server_of(sender) not in allowed_servers:
        return None
    root = thread_root(content)
    body = strip_reply_fallback(str(content.get("body", "")))
    command = command_text(body)
    if command is not None:
        return Inbound("command", command, root)
    if root is not None and body.strip():
        return Inbound("relay", body, root)
    return None
