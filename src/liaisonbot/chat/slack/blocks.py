"""Block Kit from the neutral posts: escaped user text, Slack's size limits, card buttons."""

from __future__ import annotations

from typing import Any

from liaisonbot.chat.formatting import clean, escape_mrkdwn, to_mrkdwn
from liaisonbot.chat.render import as_of, facts, is_relay, measure_lines, plain_lines
from liaisonbot.chat.slack import texts
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.model import Side, Status, card_actions
from liaisonbot.domain.refs import native_id, platform_of, slack_team
from liaisonbot.service import messages as m
from liaisonbot.service.i18n import words

Block = dict[str, Any]
SECTION_MAX = 3000
MAX_BLOCKS = 50
FALLBACK_MAX = 3900
TOTAL_MAX = 11000  # Slack refuses blocks totalling about 13k characters



#: mrkdwn-safe user text (``formatting.escape_mrkdwn``).
escape = escape_mrkdwn


def cut(text: str, limit: int, ref: str | None, locale: str = "en") -> str:
    """``text`` within ``limit`` characters, ending with a pointer to ``show`` when cut (in
    the reader's ``locale``)."""
    if len(text) <= limit:
        return text
    tail = words(locale)(texts.CUT).format(ref=ref) if ref else "…"
    body = text[: limit - len(tail)]
    if body.endswith("&") or "&" in body[-5:]:  # never split an entity like &amp;
        body = body[: body.rfind("&")]
    if body.rfind("<") > body.rfind(">"):  # nor a link like <https://…>
        body = body[: body.rfind("<")]
    return body + tail


def section(text: str, ref: str | None = None, locale: str = "en") -> Block:
    return {"type": "section", "text": {"type": "mrkdwn",
                                        "text": cut(text, SECTION_MAX, ref, locale)}}


def mention(user_ref: str, team: str | None) -> str:
    """``<@U…>`` for a Slack user of this workspace, else the escaped reference."""
    if platform_of(user_ref) == "slack" and slack_team(user_ref) in (None, team):
        return f"<@{native_id(user_ref)}>"
    return escape(user_ref)


def card_blocks(card: Card, post: Post, side: str | None) -> list[Block]:
    """A request card; ``side`` ("requesting"/"requested") picks the buttons, None shows none."""
    f = facts(card, post.tz, as_of(post), post.locale)
    w = f.words
    title = escape(f.title) + "".join(f" · *{escape(flag)}*" for flag in f.flags)
    blocks: list[Block] = [
        section(f"*{title}*"),
        section(f"{escape(f.parties)} · *{escape(f.status)}* · "
                f"{escape(w(m.CARD_DUE).format(due=f.due))}"),
        section(escape(w(m.CARD_SUMMARY).format(
            summary=f.summary if f.summary is not None else w(texts.CONFIDENTIAL))),
            card.ref, post.locale)]
    extra = [escape(f.clocks) if f.clocks else "",
             escape(w(m.CARD_MISSING).format(missing=f.missing, office=card.requesting_name))
             if f.missing is not None else "",
             escape(f.hold) if f.hold else "",
             escape(w(m.CARD_BASIS).format(basis=f.basis)) if f.basis else "",
             escape(w(m.CARD_HANDLED).format(assignee=f.assignee)) if f.assignee else "",
             escape(w(m.CARD_ETA).format(eta=f.eta)) if f.eta else ""]
    measures = measure_lines(card, post.tz, as_of(post), post.locale)
    if measures:  # issue 24: each measure and its state, the conditions on use
        blocks.append(section("\n".join(escape(line) for line in measures), card.ref,
                              post.locale))
    if any(extra):
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": cut(" · ".join(e for e in extra if e), SECTION_MAX,
                                           card.ref, post.locale)}]})
    buttons = card_buttons(card, side, post.locale)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"lb-card-{card.request_id}",
                       "elements": buttons})
    return blocks


def card_buttons(card: Card, side: str | None, locale: str = "en") -> list[Block]:
    """The card's buttons for ``side``, as the domain's rules say (the desk still decides
    every click), labelled in ``locale``."""
    if side not in tuple(Side):
        return []
    w = words(locale)
    verbs = card_actions(Side(side), Status(card.status))
    return [{"type": "button", "action_id": f"lb_{verb}", "value": card.ref,
             "text": {"type": "plain_text", "text": w(texts.BUTTONS[verb])},
             **({"style": "primary"} if verb in ("ack", "answer", "close") else {})}
            for verb in verbs]


def text_blocks(post: Post, team: str | None) -> list[Block]:
    """Any post as escaped mrkdwn sections (first line bold), mentions appended."""
    if is_relay(post):
        return chunk_sections(relay_mrkdwn(post).split("\n"), post.request_id, post.locale)
    lines = [escape(line) for line in plain_lines(post)]
    if lines:
        lines[0] = f"*{lines[0]}*" if lines[0].strip() else lines[0]
    if post.mentions:
        lines.append(" ".join(mention(u, team) for u in post.mentions))
    return chunk_sections(lines, post.request_id, post.locale)


def relay_mrkdwn(post: Post) -> str:
    """A relayed message: the author in bold, the neutral text as escaped mrkdwn. An edit
    renders like the message itself (Slack marks it "edited")."""
    return f"*{escape(clean(post.author or ''))}:* " + to_mrkdwn(post.text)


def chunk_sections(lines: list[str], request_id: int | None,
                   locale: str = "en") -> list[Block]:
    """Lines packed into sections of at most 3000 characters, at most 50 blocks, ~12k total."""
    ref = f"R-{request_id}" if request_id else None
    chunks: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= SECTION_MAX or not current:
            current = candidate
        else:
            chunks.append(current)
            current = line
    chunks.append(current)
    blocks: list[Block] = []
    used = 0
    for chunk in chunks:
        room = min(SECTION_MAX, TOTAL_MAX - used)
        if len(blocks) == MAX_BLOCKS - 1 or room < 200:
            blocks.append(section(words(locale)(texts.CUT).format(ref=ref) if ref else "…"))
            break
        blocks.append(section(cut(chunk, room, ref, locale) if chunk.strip() else " ", ref,
                              locale))
        used += len(blocks[-1]["text"]["text"])
    return blocks


def fallback(post: Post) -> str:
    """The notification / accessibility text: plain lines, escaped, within limits."""
    ref = f"R-{post.request_id}" if post.request_id else None
    if is_relay(post):
        return cut(relay_mrkdwn(post), FALLBACK_MAX, ref, post.locale)
    text = "\n".join(plain_lines(post))
    return cut(escape(text), FALLBACK_MAX, ref, post.locale)


def render(post: Post, *, side: str | None, team: str | None) -> tuple[str, list[Block]]:
    """``(text, blocks)`` for ``chat.postMessage`` / ``chat.update`` / ephemeral replies."""
    if post.kind in ("card", "card_update") and post.card is not None:
        head = [] if post.kind == "card_update" else \
            [section(f"*{escape(post.text.splitlines()[0])}*")] if post.text else []
        return fallback(post), [*head, *card_blocks(post.card, post, side)]
    if post.kind in ("show", "direct") and post.card is not None:
        card = card_blocks(post.card, post, None)
        rest = text_blocks(Post(kind="reply", text=post.text, request_id=post.request_id,
                                locale=post.locale), team)
        return fallback(post), [*card, *rest][:MAX_BLOCKS]
    return fallback(post), text_blocks(post, team)
