"""Neutral posts as Matrix message content: plain ``body`` plus escaped ``formatted_body``.

Every piece of user text goes through :func:`esc`, the one HTML escape
(``formatting.escape_html``, which relayed text goes through too): it cleans the text
(``formatting.clean``: no bidi or invisible characters), breaks ``@room``
(``formatting.defuse``) so it can never ping a room, and HTML-escapes it. No user HTML is ever
passed through.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from liaisonbot.chat.formatting import clean, defuse, to_html
from liaisonbot.chat.formatting import escape_html as esc
from liaisonbot.chat.render import Markup, as_of, card_lines, card_row, is_relay, plain_lines
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.refs import native_id, platform_of

HTML_FORMAT = "org.matrix.custom.html"
MEGOLM = "m.megolm.v1.aes-sha2"
MARKER = "org.liaisonbot.delivery"


def matrix_mentions(post: Post) -> list[str]:
    """The Matrix user ids among the post's mentions (others live on other platforms)."""
    return [native_id(user) for user in post.mentions if platform_of(user) == "matrix"]


def _pill(user_id: str) -> str:
    return f'<a href="https://matrix.to/#/{html.escape(user_id, quote=True)}">{esc(user_id)}</a>'


def _lines_html(lines: list[str]) -> str:
    return "<br>".join(esc(line) for line in lines)


HTML = Markup(escape=esc, bold=lambda text: f"<b>{text}</b>",
              italic=lambda text: f"<i>{text}</i>")


def _card_html(card: Card, tz: str, now: datetime, locale: str = "en") -> str:
    return "<blockquote>" + "<br>".join(card_lines(card, tz, now, HTML, locale)) \
        + "</blockquote>"


def formatted(post: Post) -> str:
    """The post as Matrix HTML (the spec's allowlist: b, i, br, ul, li, blockquote, a)."""
    now = as_of(post)
    text_lines = post.text.splitlines() or [""]
    if is_relay(post):
        return f"<b>{esc(clean(post.author or ''))}</b>: {to_html(post.text)}"
    if post.kind in ("card", "direct") and post.card:
        return _lines_html(text_lines) + _card_html(post.card, post.tz, now, post.locale)
    if post.kind == "show" and post.card:
        return _card_html(post.card, post.tz, now, post.locale) + _lines_html(text_lines)
    if post.kind == "list":
        rows = "".join(f"<li>{esc(card_row(c, post.tz, now, post.locale))}</li>"
                       for c in post.cards)
        return _lines_html(text_lines) + (f"<ul>{rows}</ul>" if rows else "")
    return _lines_html(plain_lines(post))


def message_content(post: Post, *, delivery_id: str, thread_root: str | None = None,
                    edit_of: str | None = None) -> dict[str, Any]:
    """The full ``m.room.message`` content: m.notice, body, HTML, m.mentions, relation, marker."""
    users = matrix_mentions(post)
    body = defuse(clean("\n".join(plain_lines(post))))
    html_body = formatted(post)
    if users:
        body += "\ncc " + ", ".join(users)
        html_body += "<br>cc " + ", ".join(_pill(u) for u in users)
    content: dict[str, Any] = {
        "msgtype": "m.notice", "body": body, "format": HTML_FORMAT, "formatted_body": html_body,
        "m.mentions": {"user_ids": users} if users else {}, MARKER: delivery_id}
    if edit_of is not None:
        new = {k: v for k, v in content.items() if k != MARKER}
        content = {**new, "body": "* " + body, "formatted_body": "* " + html_body,
                   "m.new_content": new, MARKER: delivery_id,
                   "m.relates_to": {"rel_type": "m.replace", "event_id": edit_of}}
    elif thread_root is not None:
        content["m.relates_to"] = {"rel_type": "m.thread", "event_id": thread_root,
                                   "is_falling_back": True,
                                   "m.in_reply_to": {"event_id": thread_root}}
    return content
