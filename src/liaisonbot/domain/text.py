"""Text from outside, made valid and bounded once; text going back out, made harmless.

``valid_text`` is applied where inbound text enters the core (``Desk.handle_command``,
``Desk.relay``, ``Desk.relay_edit``), so the console, Slack and Matrix all pass through it:
lone surrogates (JSON allows ``"\\ud800"``; a console decodes Latin-1 bytes to them) become
U+FFFD, line breaks of every kind (CR LF, CR, U+2028, U+2029, NEL) become ``\\n``, other
control characters (C0 but tab and newline, DEL, C1) are dropped, and the text is cut at
``MAX_INBOUND`` characters: twice the longest command, so the grammar can still say how long
it was against its limit. PostgreSQL refuses NUL in text, SHA-256 over UTF-8 refuses
surrogates: after this neither can happen.

``echo`` is what a refusal may quote of bad input: a short prefix, without control, bidi or
zero-width characters. ``printable`` is one line of output for a terminal.
"""

from __future__ import annotations

import re

MAX_INBOUND = 16_000
MAX_ECHO = 40

_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile("\r\n|[\r\u2028\u2029\x85\x0b\x0c]")
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
#: Bidi embedding/override/isolate controls, marks, and zero-width characters.
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b-\u200f\u2060-\u2064\ufeff"
                        "\u180e\u00ad\u061c]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def valid_text(text: str, limit: int = MAX_INBOUND) -> str:
    """Inbound text as the core stores and hashes it (see the module docstring)."""
    text = _SURROGATE.sub("\ufffd", text[:limit])
    return _CONTROL.sub("", _LINE_BREAK.sub("\n", text))


def echo(text: str, limit: int = MAX_ECHO) -> str:
    """At most ``limit`` characters of ``text`` to quote back: one line, nothing invisible."""
    shown = _INVISIBLE.sub("", valid_text(text, limit * 4)).replace("\n", " ").replace("\t", " ")
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def printable_lines(text: str) -> list[str]:
    """Output for a terminal: split at every kind of line break, without control characters
    (no escape sequence reaches the terminal) or bidi controls (nothing reorders a line)."""
    return [_BIDI.sub("", line).replace("\t", "    ")
            for line in valid_text(text, len(text)).split("\n")]
