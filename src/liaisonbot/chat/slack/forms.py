"""Modals: ``/liaison open`` with no arguments, and the small forms behind card buttons.

Each form's ``private_metadata`` carries where it came from (team, channel, thread, request);
a submission is turned back into the same command text a person could type.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from liaisonbot.chat.slack import texts
from liaisonbot.domain.model import Kind

OPEN_CALLBACK = "lb_open_form"
ACTION_CALLBACK = "lb_action_form"
TEXT_VERBS = {"answer": ("text", "conditions"), "extend": ("new_due", "reason"),
              "reopen": ("reason",), "incomplete": ("missing",), "complete": ("supplied",)}
_MULTILINE = ("text", "reason", "missing", "supplied", "conditions")
#: Fields a form may leave empty (the conditions on use of an answer).
_OPTIONAL = ("conditions",)
#: Quote pairs the grammar groups words with (``domain.grammar``), tried in turn.
_QUOTE_PAIRS = (('"', '"'), ("\u201c", "\u201d"), ("\u201e", "\u201c"))


@dataclass(frozen=True)
class Origin:
    """Where a form was opened: the command is run as the submitter in this channel."""

    team: str
    channel: str
    thread_ts: str | None = None
    verb: str = "open"
    ref: str = ""

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def load(cls, raw: str) -> Origin:
        return cls(**json.loads(raw or "{}"))


def _same(text: str) -> str:
    return text


def _input(name: str, *, multiline: bool = False, optional: bool = False,
           max_length: int = 3000, tr: Callable[[str], str] = _same) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": name,
                               "multiline": multiline, "max_length": max_length}
    if name in texts.FIELD_HINTS:
        element["placeholder"] = {"type": "plain_text", "text": tr(texts.FIELD_HINTS[name])}
    return {"type": "input", "block_id": name, "optional": optional, "element": element,
            "label": {"type": "plain_text", "text": tr(texts.FIELD_LABELS[name])}}


def _modal(callback: str, title: str, origin: Origin, blocks: list[dict[str, Any]],
           tr: Callable[[str], str] = _same) -> dict[str, Any]:
    return {"type": "modal", "callback_id": callback, "private_metadata": origin.dump(),
            "title": {"type": "plain_text", "text": title[:24]},
            "submit": {"type": "plain_text", "text": tr(texts.SUBMIT)},
            "close": {"type": "plain_text", "text": tr(texts.CANCEL)}, "blocks": blocks}


def open_view(origin: Origin, offices: list[tuple[str, str]],
              tr: Callable[[str], str] = _same) -> dict[str, Any]:
    """The ``open`` form; ``offices`` are (slug, name) of the offices one may ask; labels
    through ``tr`` (the channel's language)."""
    kind_name = getattr(tr, "kind", _same)  # a reader's Words names kinds in its language
    kinds = [{"text": {"type": "plain_text", "text": kind_name(k.value)[:75]}, "value": k.value}
             for k in Kind]
    to = {"type": "input", "block_id": "to",
          "label": {"type": "plain_text", "text": tr(texts.FIELD_LABELS["to"])},
          "element": {"type": "static_select", "action_id": "to", "options": [
              {"text": {"type": "plain_text", "text": f"{name[:60]} ({slug})"[:75]},
               "value": slug} for slug, name in offices[:100]]}}
    kind = {"type": "input", "block_id": "kind", "optional": True,
            "label": {"type": "plain_text", "text": tr(texts.FIELD_LABELS["kind"])},
            "element": {"type": "static_select", "action_id": "kind", "options": kinds}}
    urgent = {"type": "input", "block_id": "urgent", "optional": True,
              "label": {"type": "plain_text", "text": tr(texts.FIELD_LABELS["urgent"])},
              "element": {"type": "checkboxes", "action_id": "urgent", "options": [
                  {"text": {"type": "plain_text", "text": tr(texts.FIELD_LABELS["urgent"])},
                   "value": "urgent"}]}}
    blocks = [_input("case", max_length=64, tr=tr), to, kind,
              _input("due", optional=True, tr=tr), urgent,
              _input("summary", multiline=True, tr=tr)]
    return _modal(OPEN_CALLBACK, tr(texts.OPEN_TITLE), origin, blocks, tr)


def action_view(origin: Origin, tr: Callable[[str], str] = _same) -> dict[str, Any]:
    """The small form for a button whose command needs text (answer, extend, reopen)."""
    fields = TEXT_VERBS[origin.verb]
    blocks = [_input(name, multiline=name in _MULTILINE, optional=name in _OPTIONAL,
                     max_length={"new_due": 20, "conditions": 1000}.get(name, 3000), tr=tr)
              for name in fields]
    title = tr(texts.FORM_TITLES[origin.verb]).format(ref=origin.ref)
    return _modal(ACTION_CALLBACK, title, origin, blocks, tr)


def values(view: dict[str, Any]) -> dict[str, str]:
    """A submitted view's values as ``{block_id: text}`` (selects give their value)."""
    found: dict[str, str] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        for value in actions.values():
            if value.get("type") == "static_select":
                found[block_id] = ((value.get("selected_option") or {}).get("value")) or ""
            elif value.get("type") == "checkboxes":
                found[block_id] = ",".join(o["value"] for o in value.get("selected_options") or [])
            else:
                found[block_id] = value.get("value") or ""
    return found


def _word(text: str) -> str:
    """One token for the grammar: whitespace squeezed out (a case or date has none)."""
    return re.sub(r"\s+", "", text)


def _flat(text: str) -> str:
    return " ".join(text.split())


def open_command(data: dict[str, str]) -> str:
    parts = ["open", _word(data.get("case", "")), f"to:{_word(data.get('to', ''))}"]
    if data.get("kind"):
        parts.append(f"kind:{_word(data['kind'])}")
    if data.get("due", "").strip():
        parts.append(f"due:{_word(data['due'])}")
    if "urgent" in data.get("urgent", ""):
        parts.append("urgent")
    parts.append(_flat(data.get("summary", "")))
    return " ".join(p for p in parts if p)


def action_command(origin: Origin, data: dict[str, str]) -> str:
    if origin.verb == "extend":
        due, reason = _word(data.get("new_due", "")), _flat(data.get("reason", ""))
        return f"extend {origin.ref} {due} {reason}"
    field = TEXT_VERBS[origin.verb][0]
    command = f"{origin.verb} {origin.ref} {_flat(data.get(field, ''))}".strip()
    conditions = _flat(data.get("conditions", ""))
    if origin.verb == "answer" and conditions:
        command += f" conditions:{_quoted(conditions)}"
    return command


def _quoted(text: str) -> str:
    """``text`` as one quoted option value: in the first quote pair it does not contain (a
    straight double quote inside becomes a closing curly one when every pair occurs)."""
    for opening, closing in _QUOTE_PAIRS:
        if opening not in text and closing not in text:
            return f"{opening}{text}{closing}"
    return '"' + text.replace('"', "\u201d") + '"'

