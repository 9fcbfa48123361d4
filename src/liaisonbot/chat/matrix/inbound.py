"""Native Matrix events → what the desk should hear (a command, a thread message, or nothing)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from liaisonbot.chat.formatting import from_matrix, from_plain

PREFIX = "!liaison"
_TEXT_TYPES = ("m.text", "m.emote")
_FILE_TYPES = ("m.file", "m.image", "m.video", "m.audio")


@dataclass(frozen=True)
class Inbound:
    """One event the desk cares about. ``text`` is the command for a command, neutral markup
    (``chat.formatting``) for a relay or an edit; ``target`` is the event an edit or a
    redaction changes; ``files`` the (name, size) of a shared file."""

    kind: Literal["command", "relay", "edit", "delete", "file"]
    text: str
    thread_root: str | None
    target: str | None = None
    files: tuple[tuple[str, int], ...] = ()


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


def relay_text(content: dict[str, Any]) -> str:
    """A message's text as neutral markup: its HTML when it has some, else its body (without
    the reply fallback either way)."""
    if content.get("format") == "org.matrix.custom.html" and content.get("formatted_body"):
        return from_matrix(content)
    return from_plain(strip_reply_fallback(str(content.get("body", ""))))


def _file(content: dict[str, Any], root: str) -> Inbound:
    info = content.get("info")
    size = info.get("size") if isinstance(info, dict) else None
    name = str(content.get("filename") or content.get("body") or "file")
    return Inbound("file", "", root, files=((name, size if isinstance(size, int) else 0),))


def classify(*, sender: str, event_type: str, content: dict[str, Any], own_user: str,
             allowed_servers: Collection[str], redacts: str | None = None) -> Inbound | None:
    """What a (decrypted) room event means for the desk; None for everything it ignores:
    the bot's own events (and its own edits and redactions), notices (bots never answer
    bots), other servers. Edits (``m.replace``) and redactions come back as ``edit`` and
    ``delete`` (the desk decides whether they touch a relayed message), files in a thread
    as ``file``."""
    if sender == own_user:
        return None
    if allowed_servers and server_of(sender) not in allowed_servers:
        return None
    if event_type == "m.room.redaction":
        target = redacts or content.get("redacts")
        return Inbound("delete", "", None, target=target) if isinstance(target, str) else None
    if event_type != "m.room.message":
        return None
    rel = content.get("m.relates_to") or {}
    if rel.get("rel_type") == "m.replace":
        new = content.get("m.new_content")
        if isinstance(new, dict) and new.get("msgtype") in _TEXT_TYPES \
                and isinstance(rel.get("event_id"), str):
            return Inbound("edit", relay_text(new), None, target=str(rel["event_id"]))
        return None
    root = thread_root(content)
    if content.get("msgtype") in _FILE_TYPES:
        return _file(content, root) if root is not None else None
    if content.get("msgtype") not in _TEXT_TYPES or "m.new_content" in content:
        return None
    body = strip_reply_fallback(str(content.get("body", "")))
    command = command_text(body)
    if command is not None:
        return Inbound("command", command, root)
    if root is not None and body.strip():
        return Inbound("relay", relay_text(content), root)
    return None
