"""Relayed text across platforms: one small neutral markup, converted at the edges.

The neutral markup (what ``Post.text`` of a relay and the history hold) is a tiny subset of
markdown, the same markers Slack's mrkdwn uses:

- ``*bold*``, ``_italic_``, ```code``` (inline), and a fenced block between two lines of
  three backticks;
- a line starting with ``- `` is a list item;
- a backslash makes the next character literal (``\\*`` is a star, ``\\\\`` a backslash);
- a link is its bare ``http(s)://`` URL, in the text; a link whose label differs from its URL
  is written ``label (url)`` when it enters, so no label can hide where a link goes;
- nothing else: there are no mentions, no HTML, no entities. Any string is valid neutral text
  and renders safely, so safety never depends on the inbound conversion being right.

Inbound (:func:`from_slack`, :func:`from_matrix_html`, :func:`from_plain`) turn native text into
neutral text: user mentions become plain names, ``<!channel>``/``<!here>``/``@room`` become
inert words, HTML outside a small allowlist is dropped (the text inside is kept, except in
``script``/``style``/``mx-reply``). Outbound (:func:`to_mrkdwn`, :func:`to_html`,
:func:`to_plain`) escape every piece of text for the target (``&<>`` for Slack, HTML escaping
for Matrix) and defuse ``@room`` with a word joiner, so a relay never pings a room.

Invisible characters (decided here, applied in and out): the bidi embedding, override and
isolate controls U+202A–U+202E and U+2066–U+2069 are removed (they can reverse how a URL or a
name reads), as are zero-width characters with no linguistic use (U+200B, U+2060–U+2064,
U+FEFF, U+180E, U+00AD) and control characters other than newline and tab. ZWJ/ZWNJ (U+200C,
U+200D: emoji sequences, Persian, Indic scripts) and the marks LRM/RLM (U+200E, U+200F) stay:
they cannot reorder text and every ping/link check runs on text where they make no difference
(Slack needs an unescaped ``<``, Matrix an exact ``@room``, both of which are escaped anyway).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser

_INVISIBLE = re.compile(
    "[\u202a-\u202e\u2066-\u2069\u200b\u2060-\u2064\ufeff\u180e\u00ad"
    "\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ROOM_PING = re.compile(r"@(room)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_MARKERS = re.compile(r"([\\*_`])")
URL = re.compile(r"https?://[^\s<>\"'`|\\]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?)]}'\""
MAX_NEUTRAL = 8000


def clean(text: str) -> str:
    """Remove bidi controls, pointless zero-width characters and control characters."""
    return _INVISIBLE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def literal(text: str) -> str:
    """Plain text as neutral markup: every marker made literal (URLs stay as they are, so
    they remain links)."""
    text = clean(text)
    out, pos = [], 0
    for found in URL.finditer(text):
        url = _url_at(text, found.start())
        if url is None:
            continue
        out.append(_MARKERS.sub(r"\\\1", text[pos:found.start()]))
        out.append(url)
        pos = found.start() + len(url)
    out.append(_MARKERS.sub(r"\\\1", text[pos:]))
    return "".join(out)


def defuse(text: str) -> str:
    """``@room`` → ``@\u2060room``: reads the same, pings nobody."""
    return _ROOM_PING.sub(lambda m: "@" + _WORD_JOINER + m.group(1), text)


def link(url: str, label: str) -> str:
    """A link as neutral text: the URL alone, or ``label (url)`` when the label differs."""
    url, label = clean(url).strip(), clean(label).strip()
    shown = label.rstrip("/")
    bare = re.sub(r"^(https?://|mailto:)", "", url, flags=re.IGNORECASE).rstrip("/")
    if not URL.fullmatch(url):  # not http(s): no link, just words
        return literal(label if label == url or not label else f"{label} ({url})")
    if not label or shown in (url.rstrip("/"), bare):
        return url
    return f"{literal(label)} ({url})"


# ---------------------------------------------------------------------- the neutral tree

@dataclass(frozen=True)
class Span:
    """One inline piece: ``kind`` text, bold, italic, code or url."""

    kind: str
    text: str = ""
    children: tuple[Span, ...] = ()


@dataclass(frozen=True)
class Block:
    """One block: a ``line`` of spans, a list ``item``, or a ``code`` block (raw text)."""

    kind: str
    spans: tuple[Span, ...] = ()
    code: str = ""


_EMPH = {"*": "bold", "_": "italic"}


def bounded(text: str) -> str:
    """At most ``MAX_NEUTRAL`` characters: a longer text is cut, ending in "…"."""
    return text if len(text) <= MAX_NEUTRAL else text[:MAX_NEUTRAL - 1] + "…"


def _url_at(text: str, i: int, stop: int | None = None) -> str | None:
    """The URL starting at ``i``, if any. ``stop`` (the end of the run of URL characters
    from ``i``, when the caller knows it) spares the rescan of a long run."""
    if i > 0 and text[i - 1].isalnum():
        return None
    if stop is None:
        found = URL.match(text, i)
        if not found:
            return None
        stop = found.end()
    else:
        head = text[i:i + 8].lower()
        body = i + 8 if head.startswith("https://") else \
            i + 7 if head.startswith("http://") else None
        if body is None or stop <= body:
            return None
    end, depth = stop, 0
    for k in range(i, stop):  # an unbalanced ")" ends the URL: "label (url)" stays apart
        ch = text[k]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                end = k
                break
    opens, closes = text.count("(", i, end), text.count(")", i, end)
    while end > i and text[end - 1] in _URL_TAIL:
        if text[end - 1] == ")":
            if opens >= closes:
                break
            closes -= 1
        end -= 1
    return text[i:end] if end - i > len("https://") else None


def _url_stops(text: str) -> list[int]:
    """For each index, where the run of URL characters from there ends (one pass)."""
    stops = [len(text)] * (len(text) + 1)
    for k in range(len(text) - 1, -1, -1):
        ch = text[k]
        stops[k] = k if ch.isspace() or ch in "<>\"'`|\\" else stops[k + 1]
    return stops


def _closing(text: str, start: int, marker: str, dead: bytearray | None = None) -> int:
    """Index of the marker closing an emphasis opened at ``start - 1``, else -1.

    ``dead`` marks the positions earlier failed scans of this marker went through: from any
    of them the scan would go the same way and fail again, so it stops there. Each position
    is then scanned at most once per marker, and a line of unmatched markers parses in
    linear time (it used to rescan to the end of the line for each one)."""
    if start >= len(text) or text[start].isspace():
        return -1
    j = start
    path: list[int] = []
    while j < len(text):
        if dead is not None:
            if dead[j]:
                break
            path.append(j)
        ch = text[j]
        if ch == "\\":
            j += 2
            continue
        if ch == "\n":
            break
        if ch == "`":  # a code span inside emphasis is skipped whole
            end = text.find("`", j + 1)
            j = end + 1 if end > 0 else j + 1
            continue
        if ch == marker and not text[j - 1].isspace() and j > start and (
                j + 1 >= len(text) or not text[j + 1].isalnum()):
            return j
        j += 1
    if dead is not None:
        for k in path:
            dead[k] = 1
    return -1


def inline(text: str) -> tuple[Span, ...]:
    """Neutral inline markup → spans, in time linear in the text's length."""
    spans: list[Span] = []
    buf: list[str] = []
    dead = {marker: bytearray(len(text) + 1) for marker in _EMPH}
    stops: list[int] | None = None

    def flush() -> None:
        if buf:
            spans.append(Span("text", "".join(buf)))
            buf.clear()

    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end > i + 1 and "\n" not in text[i + 1:end]:
                flush()
                spans.append(Span("code", text[i + 1:end]))
                i = end + 1
                continue
        if ch in "hH":
            if stops is None:
                stops = _url_stops(text)
            url = _url_at(text, i, stops[i])
            if url:
                flush()
                spans.append(Span("url", url))
                i += len(url)
                continue
        if ch in _EMPH and (i == 0 or not text[i - 1].isalnum()):
            end = _closing(text, i + 1, ch, dead[ch])
            if end > 0:
                flush()
                spans.append(Span(_EMPH[ch], children=inline(text[i + 1:end])))
                i = end + 1
                continue
        buf.append(ch)
        i += 1
    flush()
    return tuple(spans)


def _fence_end(lines: list[str], start: int, closers: list[int]) -> int | None:
    """The line closing a fence opened on ``lines[start]`` (Slack writes ```a\nb``` with
    the fences on the text's own lines; markdown puts them alone on a line). ``closers[k]``
    is the first line from ``k`` on that ends with a fence (-1: none)."""
    first = lines[start].strip()
    if len(first) > 6 and first.endswith("```"):
        return start
    after = closers[start + 1]
    return after if after >= 0 else None


def _closers(lines: list[str]) -> list[int]:
    found = [-1] * (len(lines) + 1)
    for k in range(len(lines) - 1, -1, -1):
        found[k] = k if lines[k].rstrip().endswith("```") else found[k + 1]
    return found


def parse(text: str) -> tuple[Block, ...]:
    """Neutral markup → blocks (lines, list items, fenced code). Linear in the text's length,
    which is held to ``MAX_NEUTRAL``."""
    blocks: list[Block] = []
    lines = bounded(clean(text)).split("\n")
    closers = _closers(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            end = _fence_end(lines, i, closers)
            if end is not None:
                body = "\n".join(lines[i:end + 1]).strip()[3:-3]
                blocks.append(Block("code", code=body.strip("\n")))
                i = end + 1
                continue
        if line.startswith(("- ", "• ")):
            blocks.append(Block("item", inline(line[2:])))
        else:
            blocks.append(Block("line", inline(line)))
        i += 1
    return tuple(blocks)


# ---------------------------------------------------------------------- outbound

def escape_html(text: str) -> str:
    """User text for HTML (Matrix ``formatted_body``): cleaned, ``@room`` defused, then
    HTML-escaped (quotes too, so it is safe in an attribute)."""
    return html.escape(defuse(clean(text)), quote=True)


def escape_mrkdwn(text: str) -> str:
    """User text for Slack mrkdwn: cleaned (no bidi or invisible characters) and ``&<>``
    escaped, so no ping, mention or disguised link can come through."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html_link(url: str) -> str:
    href = html.escape(clean(url), quote=True)  # not defused: the address must stay exact
    return f'<a href="{href}">{escape_html(url)}</a>'


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class _Target:
    """How one target writes the tree. ``escape`` makes raw text (a text or code span, a code
    block) safe for the target, and ``link`` writes a URL span. Every other node is written
    between the two marks its kind has in ``spans`` or ``blocks``: the escaped text of code,
    the written children of bold, italic, a line or a list item. A run of list items goes
    between the marks of ``items``, the pieces are joined with ``sep``, and ``finish`` has
    the last word on the whole text."""

    escape: Callable[[str], str]
    link: Callable[[str], str]
    spans: dict[str, tuple[str, str]]
    blocks: dict[str, tuple[str, str]]
    items: tuple[str, str]
    sep: str
    finish: Callable[[str], str]


_MRKDWN = _Target(
    escape=escape_mrkdwn, link=lambda url: "<" + escape_mrkdwn(url) + ">",
    spans={"code": ("`", "`"), "bold": ("*", "*"), "italic": ("_", "_")},
    blocks={"line": ("", ""), "item": ("• ", ""), "code": ("```", "```")},
    items=("", ""), sep="\n", finish=_same)
_HTML = _Target(
    escape=escape_html, link=_html_link,
    spans={"code": ("<code>", "</code>"), "bold": ("<strong>", "</strong>"),
           "italic": ("<em>", "</em>")},
    blocks={"line": ("", "<br>"), "item": ("<li>", "</li>"),
            "code": ("<pre><code>", "</code></pre>")},
    items=("<ul>", "</ul>"), sep="", finish=lambda joined: joined.removesuffix("<br>"))
_PLAIN = _Target(  # escapes resolved by the parser; @room is defused once, on the whole text
    escape=_same, link=_same,
    spans={"code": ("`", "`"), "bold": ("*", "*"), "italic": ("_", "_")},
    blocks={"line": ("", ""), "item": ("- ", ""), "code": ("```\n", "\n```")},
    items=("", ""), sep="\n", finish=lambda joined: defuse(clean(joined)))


def _write(text: str, target: _Target) -> str:
    """The one walk over the tree of ``text`` (:func:`parse`): every block and span written
    as ``target`` says."""
    escape, link, sep = target.escape, target.link, target.sep

    def spans(nodes: tuple[Span, ...]) -> str:
        out = []
        for span in nodes:
            if span.kind == "text":
                out.append(escape(span.text))
            elif span.kind == "url":
                out.append(link(span.text))
            else:
                before, after = target.spans[span.kind]
                inner = escape(span.text) if span.kind == "code" else spans(span.children)
                out.append(before + inner + after)
        return "".join(out)

    out: list[str] = []
    items: list[str] = []
    for block in parse(text):
        before, after = target.blocks[block.kind]
        inner = escape(block.code) if block.kind == "code" else spans(block.spans)
        if block.kind == "item":
            items.append(before + inner + after)
            continue
        if items:
            out.append(target.items[0] + sep.join(items) + target.items[1])
            items = []
        out.append(before + inner + after)
    if items:
        out.append(target.items[0] + sep.join(items) + target.items[1])
    return target.finish(sep.join(out))


def to_mrkdwn(text: str) -> str:
    """Neutral → Slack mrkdwn: ``&<>`` escaped everywhere, links as ``<url>``."""
    return _write(text, _MRKDWN)


def to_html(text: str) -> str:
    """Neutral → Matrix ``formatted_body``: only strong, em, code, pre, ul, li, a, br."""
    return _write(text, _HTML)


def to_plain(text: str) -> str:
    """Neutral → plain text (Matrix ``body``, the console): markers kept as a reader would
    type them, escapes resolved, ``@room`` defused."""
    return _write(text, _PLAIN)


# ---------------------------------------------------------------------- inbound: Slack

_SLACK_ENTITY = re.compile(r"<([^<>\n]*)>")
_SPECIAL = {"channel": "@channel", "here": "@here", "everyone": "@everyone"}


def _slack_entity(inner: str, name_of: Callable[[str], str | None]) -> str | None:
    """One ``<…>`` entity as neutral text; None when it is no entity (kept as typed)."""
    target, _, label = inner.partition("|")
    label = html.unescape(label)
    if target.startswith("@") and re.fullmatch(r"@[UW][A-Z0-9]+", target):
        name = name_of(target[1:]) or label or target[1:]
        return literal("@" + name)
    if target.startswith("#") and re.fullmatch(r"#C[A-Z0-9]+", target):
        return literal("#" + (label or target[1:]))
    if target.startswith("!"):
        word = target[1:].split("^", 1)[0]
        if word in _SPECIAL:
            return literal(_SPECIAL[word])
        if word in ("subteam", "date"):
            return literal(label or word)
        return literal(label or word)
    url = html.unescape(target)
    if re.match(r"(https?|mailto):", url, re.IGNORECASE):
        if url.lower().startswith("mailto:"):
            address = url[len("mailto:"):]
            return literal(label if label in ("", address) else f"{label} ({address})") \
                if label else literal(address)
        return link(url, label)
    return None


def from_slack(text: str, name_of: Callable[[str], str | None] = lambda _id: None) -> str:
    """Slack mrkdwn (``&amp;``-escaped, ``<…>`` entities) → neutral markup.

    ``name_of(user_id)`` gives a display name for ``<@U…>`` (which become ``@Name``, plain)."""
    out: list[str] = []
    pos = 0
    for found in _SLACK_ENTITY.finditer(text or ""):
        out.append(_slack_text(text[pos:found.start()]))
        entity = _slack_entity(found.group(1), name_of)
        out.append(entity if entity is not None else _slack_text(found.group(0)))
        pos = found.end()
    out.append(_slack_text((text or "")[pos:]))
    lines = "".join(out).split("\n")
    return bounded("\n".join("- " + line[2:] if line.startswith("• ") else line
                              for line in lines))


def _slack_text(text: str) -> str:
    """Slack text between entities: markers keep their meaning, backslashes are literal."""
    raw = clean(html.unescape(text)) if "&" in text else clean(text)
    return raw.replace("\\", "\\\\")


# ---------------------------------------------------------------------- inbound: Matrix

_DROP = frozenset({"script", "style", "mx-reply", "head", "title", "iframe", "object"})
_BLOCK = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "tr", "hr",
                    "table", "details", "summary"})


class _MatrixHtml(HTMLParser):
    """Matrix ``formatted_body`` → neutral markup, by an allowlist of meanings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.drop = 0
        self.pre = 0
        self.code = 0
        self.links: list[tuple[str, int]] = []
        self.lists: list[list[int]] = []

    def _emit(self, text: str) -> None:
        if not self.drop:
            self.out.append(text)

    def _newline(self) -> None:
        if self.out and not "".join(self.out[-2:]).endswith("\n"):
            self._emit("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self.drop += 1
        elif tag in ("b", "strong"):
            self._emit("*")
        elif tag in ("i", "em"):
            self._emit("_")
        elif tag == "code" and not self.pre:
            self.code += 1
            self._emit("`")
        elif tag == "pre":
            self._newline()
            self.pre += 1
            self._emit("```\n")
        elif tag == "br":
            self._emit("\n")
        elif tag in ("ul", "ol"):
            self._newline()
            self.lists.append([0 if tag == "ol" else -1])
        elif tag == "li":
            self._newline()
            self._emit("- ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag in _BLOCK:
            self._newline()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.drop = max(0, self.drop - 1)
        elif tag in ("b", "strong"):
            self._emit("*")
        elif tag in ("i", "em"):
            self._emit("_")
        elif tag == "code" and not self.pre and self.code:
            self.code -= 1
            self._emit("`")
        elif tag == "pre" and self.pre:
            self.pre -= 1
            self._newline()
            self._emit("```\n")
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._newline()
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:])
            del self.out[start:]
            self._emit(_matrix_link(href, label))
        elif tag in _BLOCK or tag == "li":
            self._newline()

    def handle_data(self, data: str) -> None:
        if self.pre or self.code:
            self._emit(clean(data).replace("`", "'"))
        else:
            self._emit(literal(data))


def _matrix_link(href: str, label_neutral: str) -> str:
    label = re.sub(r"\\(.)", r"\1", label_neutral)  # back to plain for the comparison
    if re.match(r"https://matrix\.to/#/[@!#]", href):
        return literal(label or href.split("/#/", 1)[1])  # a pill: the name, never a ping
    return link(href, label)


def from_matrix_html(formatted_body: str) -> str:
    """Matrix HTML → neutral markup (user HTML never crosses; its meaning does)."""
    parser = _MatrixHtml()
    parser.feed(formatted_body or "")
    parser.close()
    text = "".join(parser.out)
    return bounded(re.sub(r"\n{3,}", "\n\n", text).strip("\n"))


def from_plain(body: str) -> str:
    """A plain ``body`` (or console line) → neutral markup: bare URLs stay links, every other
    character is literal."""
    return bounded(literal(body))


def from_matrix(content: dict[str, object]) -> str:
    """An ``m.room.message`` content (or its ``m.new_content``) → neutral markup."""
    fmt, formatted = content.get("format"), content.get("formatted_body")
    if fmt == "org.matrix.custom.html" and isinstance(formatted, str) and formatted.strip():
        return from_matrix_html(formatted)
    return from_plain(str(content.get("body", "")))


__all__ = ["bounded", "clean", "defuse", "escape_html", "escape_mrkdwn", "from_matrix",
           "from_matrix_html", "from_plain", "from_slack", "link", "literal", "parse",
           "to_html", "to_mrkdwn", "to_plain"]
