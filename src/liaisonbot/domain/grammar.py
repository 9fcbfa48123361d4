"""The command language shared by every platform: ``open CASE to:OFFICE … SUMMARY`` and friends.

``parse`` turns the text after ``!liaison`` / ``/liaison`` into a command, or raises
``CommandError`` with one sentence saying what was wrong and the right form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from liaisonbot.domain.commands import (
    Assign,
    Command,
    DueSpec,
    Extend,
    Help,
    ListCase,
    ListOverdue,
    OpenRequest,
    Show,
    Snooze,
    Transition,
)
from liaisonbot.domain.durations import parse_duration
from liaisonbot.domain.model import Confidentiality, Kind
from liaisonbot.domain.refs import is_case_ref, parse_request_id, parse_user_ref
from liaisonbot.domain.text import MAX_INBOUND, echo

MAX_COMMAND = 8000
MAX_SUMMARY = 2000
MAX_TEXT = 4000
MAX_BASIS = 300

USAGE: dict[str, str] = {
    "help": "help [COMMAND]",
    "open": 'open CASE to:OFFICE [kind:KIND] [due:DUE] [urgent] [basis:"TEXT"] [conf:LEVEL] SUMMARY…',
    "list": "list CASE [open|overdue|all|mine]",
    "overdue": "overdue",
    "show": "show R-n",
    "ack": "ack R-n [eta:DATE] [NOTE]",
    "answer": "answer R-n TEXT",
    "close": "close R-n [NOTE]",
    "reopen": "reopen R-n REASON",
    "decline": "decline R-n REASON",
    "withdraw": "withdraw R-n [REASON]",
    "extend": "extend R-n DUE REASON",
    "assign": "assign R-n USER",
    "snooze": "snooze R-n DUE REASON",
}
VERBS = tuple(USAGE)
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c"}
_OPTION_KEYS = ("to", "kind", "due", "basis", "conf")
_LIST_SCOPES = ("open", "overdue", "all", "mine")
_TEXT_REQUIRED = {"answer": "the answer", "reopen": "a reason", "decline": "a reason"}
_CONF_ALIASES = {"restricted": Confidentiality.RESTRICTED,
                 "confidential": Confidentiality.CONFIDENTIAL}


class CommandError(ValueError):
    """A command that cannot be understood; ``str()`` is the sentence to show the officer."""


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool = False  # the token began with a quote: it is data, never an option


def tokenize(text: str) -> list[Token]:
    """Split on whitespace; double quotes (straight or curly) group words, also after ``key:``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start, parts, quoted = i, [], False
        while i < n and not text[i].isspace():
            closing = _QUOTES.get(text[i])
            if closing and (i == start or text[i - 1] == ":"):
                end = text.find(closing, i + 1)
                if end < 0:
                    raise CommandError("A quote is not closed: end quoted text with \".")
                parts.append(text[i + 1:end])
                quoted = quoted or i == start
                i = end + 1
            else:
                parts.append(text[i])
                i += 1
        tokens.append(Token("".join(parts), quoted))
    return tokens


def usage_error(verb: str, problem: str) -> CommandError:
    return CommandError(f"{problem} Use: {USAGE[verb]}")


def parse_due(text: str, verb: str, what: str = "DUE") -> DueSpec:
    """``2026-12-31``, ``10d``, ``5bd`` or ``2w``."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return DueSpec(on=date.fromisoformat(text))
        except ValueError:
            raise usage_error(verb, f"{text} is not a real date.") from None
    try:
        return DueSpec(after=parse_duration(text, units=("d", "bd", "w")))
    except ValueError:
        raise usage_error(verb, f"{what} {echo(text)!r} is not a date (YYYY-MM-DD) or a duration "
                                "like 10d, 5bd or 2w.") from None


def parse(text: str) -> Command:
    """Parse the words after the command prefix into a command."""
    if len(text) > MAX_COMMAND:
        if len(text) >= MAX_INBOUND - 100:  # cut at the edge: its real length is unknown
            raise CommandError(f"That command is far longer than the limit of {MAX_COMMAND} "
                               "characters.")
        raise CommandError(f"That command is {len(text)} characters long; the limit is "
                           f"{MAX_COMMAND}.")
    tokens = tokenize(text.strip())
    if not tokens:
        raise CommandError("The command is empty. Try: help")
    verb, args = tokens[0].text.lower(), tokens[1:]
    parser = _PARSERS.get(verb)
    if parser is None:
        raise CommandError(f"I do not know the command {echo(tokens[0].text)!r}. "
                           f"Commands: {', '.join(VERBS)}.")
    return parser(verb, args)


def _help(verb: str, args: list[Token]) -> Command:
    topic = args[0].text.lower() if args else None
    if topic is not None and topic not in USAGE:
        raise CommandError(f"There is no command {echo(args[0].text)!r}. "
                           f"Commands: {', '.join(VERBS)}.")
    return Help(topic)


def _case(verb: str, args: list[Token]) -> str:
    if not args:
        raise usage_error(verb, "The case is missing.")
    case = args[0].text
    if not is_case_ref(case):
        raise usage_error(verb, f"{echo(case)!r} is not a case reference (letters, digits and "
                                "/ . - _, at most 64 characters, e.g. ICC-01/14-01/18).")
    return case


def _open(verb: str, args: list[Token]) -> Command:
    case = _case(verb, args)
    options: dict[str, str] = {}
    urgent, summary_words = False, list[str]()
    for token in args[1:]:
        key, sep, value = token.text.partition(":")
        if sep and not token.quoted and key.lower() in _OPTION_KEYS:
            if key.lower() in options:
                raise usage_error(verb, f"{key.lower()}: is given twice.")
            options[key.lower()] = value
        elif token.text.lower() == "urgent" and not summary_words and not token.quoted:
            urgent = True
        else:
            summary_words.append(token.text)
    if not options.get("to"):
        raise usage_error(verb, "Say which office the request goes to with to:OFFICE.")
    summary = " ".join(summary_words).strip()
    if not summary:
        raise usage_error(verb, "The request needs a summary after the options.")
    if len(summary) > MAX_SUMMARY:
        raise CommandError(f"The summary is {len(summary)} characters long; the limit is "
                           f"{MAX_SUMMARY}. Put the details in the thread.")
    basis = options.get("basis", "")
    if len(basis) > MAX_BASIS:
        raise CommandError(f"The legal basis is {len(basis)} characters long; the limit is "
                           f"{MAX_BASIS}.")
    kind_text = options.get("kind", Kind.INFORMATION.value).lower()
    if kind_text not in {k.value for k in Kind}:
        raise usage_error(verb, f"kind:{echo(kind_text)} is not a kind; use one of "
                                f"{', '.join(k.value for k in Kind)}.")
    conf_text = options.get("conf", "restricted").lower()
    if conf_text not in _CONF_ALIASES:
        raise usage_error(verb, f"conf:{echo(conf_text)} is not a level; use restricted or "
                                "confidential.")
    due = parse_due(options["due"], verb) if "due" in options else None
    return OpenRequest(case=case, to=options["to"].lower(), summary=summary, kind=Kind(kind_text),
                       due=due, urgent=urgent, basis=basis,
                       confidentiality=_CONF_ALIASES[conf_text])


def _list(verb: str, args: list[Token]) -> Command:
    case = _case(verb, args)
    scope = args[1].text.lower() if len(args) > 1 else "open"
    if scope not in _LIST_SCOPES or len(args) > 2:
        raise usage_error(verb, f"{echo(' '.join(t.text for t in args[1:]))!r} is not a list "
                                "filter.")
    return ListCase(case, scope)


def _overdue(verb: str, args: list[Token]) -> Command:
    if args:
        raise usage_error(verb, "overdue takes nothing after it.")
    return ListOverdue()


def _request_id(verb: str, args: list[Token]) -> int:
    if not args:
        raise usage_error(verb, "The request id is missing.")
    number = parse_request_id(args[0].text)
    if number is None:
        raise usage_error(verb, f"{echo(args[0].text)!r} is not a request id like R-7.")
    return number


def _rest(args: list[Token]) -> str:
    return " ".join(t.text for t in args).strip()


def _checked_text(verb: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise CommandError(f"That text is {len(text)} characters long; the limit is {MAX_TEXT}.")
    if verb in _TEXT_REQUIRED and not text:
        raise usage_error(verb, f"{verb} needs {_TEXT_REQUIRED[verb]}.")
    return text


def _show(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) > 1:
        raise usage_error(verb, "show takes only the request id.")
    return Show(number)


def _transition(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    rest, eta = args[1:], None
    if verb == "ack" and rest and rest[0].text.lower().startswith("eta:") and not rest[0].quoted:
        eta = parse_due(rest[0].text[4:], verb, "eta")
        rest = rest[1:]
    return Transition(verb, number, _checked_text(verb, _rest(rest)), eta)


def _extend_or_snooze(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) < 2:
        raise usage_error(verb, "The new date is missing.")
    due = parse_due(args[1].text, verb)
    reason = _checked_text(verb, _rest(args[2:]))
    if not reason:
        raise usage_error(verb, f"{verb} needs a reason.")
    return Extend(number, due, reason) if verb == "extend" else Snooze(number, due, reason)


def _assign(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) != 2:
        raise usage_error(verb, "Name one user.")
    user = parse_user_ref(args[1].text)
    if user is None:
        raise usage_error(verb, f"{echo(args[1].text)!r} is not a user like slack:U123ABC, "
                                "matrix:@alice:example.org or console:alice.")
    return Assign(number, user)


_PARSERS = {
    "help": _help, "open": _open, "list": _list, "overdue": _overdue, "show": _show,
    "ack": _transition, "answer": _transition, "close": _transition, "reopen": _transition,
    "decline": _transition, "withdraw": _transition, "extend": _extend_or_snooze,
    "snooze": _extend_or_snooze, "assign": _assign,
}
