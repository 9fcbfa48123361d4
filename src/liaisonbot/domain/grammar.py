"""The command language shared by every platform: ``open CASE to:OFFICE … SUMMARY`` and friends.

``parse`` turns the text after ``!liaison`` / ``/liaison`` into a command, or raises
``CommandError`` with one sentence saying what was wrong and the right form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from liaisonbot.domain.commands import (
    Assign,
    Command,
    DueSpec,
    Extend,
    Forward,
    Help,
    ListCase,
    ListOverdue,
    OpenRequest,
    Postpone,
    PostponeMeasure,
    Record,
    Show,
    Snooze,
    Transition,
    When,
    Who,
)
from liaisonbot.domain.deadlines import RECORDABLE
from liaisonbot.domain.durations import parse_duration
from liaisonbot.domain.measures import MAX_MEASURES, TOO_MANY_MEASURES
from liaisonbot.domain.model import Confidentiality, Kind
from liaisonbot.domain.refs import is_case_ref, parse_request_id, parse_user_ref
from liaisonbot.domain.text import MAX_INBOUND, echo


def N_(text: str) -> str:  # gettext's marker: the English is the msgid
    return text


USE = N_("{problem} Use: {usage}")

MAX_COMMAND = 8000
MAX_SUMMARY = 2000
MAX_TEXT = 4000
MAX_BASIS = 300
MAX_CONDITIONS = 1000

USAGE: dict[str, str] = {
    "help": "help [COMMAND]",
    "open": 'open CASE to:OFFICE[,OFFICE…] [kind:KIND] [via:INSTRUMENT] [due:DUE] [urgent] '
            '[basis:"TEXT"] [person:"TEXT"] [measure:"TEXT"]… [EVENT:DATE]… [conf:LEVEL] SUMMARY…',
    "list": "list CASE [open|overdue|all|mine]",
    "overdue": "overdue",
    "show": "show R-n",
    "ack": 'ack R-n [received:DATE] [ref:"TEXT"] [contact:"TEXT"] [eta:DATE] [at:DATETIME] '
           '[NOTE]',
    "record": "record R-n EVENT:DATE [NOTE]",
    "answer": 'answer R-n[/k] TEXT [conditions:"TEXT"] [at:DATETIME]',
    "close": "close R-n [NOTE]",
    "reopen": "reopen R-n REASON",
    "decline": "decline R-n[/k] REASON [at:DATETIME]",
    "withdraw": "withdraw R-n [REASON]",
    "extend": "extend R-n DUE REASON",
    "assign": "assign R-n USER",
    "who": "who [OFFICE]",
    "snooze": "snooze R-n DUE REASON",
    "incomplete": "incomplete R-n WHAT IS MISSING",
    "complete": "complete R-n TEXT",
    "postpone": "postpone R-n[/k] UNTIL REASON",
    "consult": "consult R-n TEXT",
    "resume": "resume R-n [NOTE]",
    "forward": "forward R-n to:OFFICE REASON",
}
VERBS = tuple(USAGE)
_QUOTES = {'"': '"', "\u201c": "\u201d", "\u201e": "\u201c"}
_OPTION_KEYS = ("to", "kind", "due", "basis", "conf", "via", "person", "measure")
_LIST_SCOPES = ("open", "overdue", "all", "mine")
_TEXT_REQUIRED = {"answer": N_("{command} needs the answer."),
                  "reopen": N_("{command} needs a reason."),
                  "decline": N_("{command} needs a reason."),
                  "incomplete": N_("{command} needs what is missing."),
                  "complete": N_("{command} needs what was missing."),
                  "consult": N_("{command} needs what is to be consulted on.")}
_CONF_ALIASES = {"restricted": Confidentiality.RESTRICTED,
                 "confidential": Confidentiality.CONFIDENTIAL}




class CommandError(ValueError):
    """A command that cannot be understood: a sentence (``template``, an English gettext
    msgid) and its values; with ``verb`` the command's usage follows. ``str()`` is the
    English sentence; ``said(tr)`` writes it with a translation function (service.i18n)."""

    def __init__(self, template: str, *, verb: str | None = None, **values: object) -> None:
        self.template, self.verb, self.values = template, verb, values
        super().__init__(self.said(str))

    def said(self, tr: Callable[[str], str]) -> str:
        values = {k: tr(v) if isinstance(v, Phrase) else v for k, v in self.values.items()}
        text = tr(self.template).format(**values) if values else tr(self.template)
        return tr(USE).format(problem=text, usage=USAGE[self.verb]) if self.verb else text


class Phrase(str):
    """A value that is itself words to translate (not user text)."""

    __slots__ = ()


@dataclass(frozen=True)
class Token:
    text: str
    quoted: bool = False  # the token began with a quote: it is data, never an option


def tokenize(text: str) -> list[Token]:
    """Split on whitespace; double quotes (straight or curly) group words, also after ``key:``."""
    if not any(quote in text for quote in _QUOTES):  # the common case: plain words
        return [Token(word) for word in text.split()]
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
                    raise CommandError(N_("A quote is not closed: end quoted text with \"."))
                parts.append(text[i + 1:end])
                quoted = quoted or i == start
                i = end + 1
            else:
                parts.append(text[i])
                i += 1
        tokens.append(Token("".join(parts), quoted))
    return tokens


def usage_error(verb: str, problem: str, **values: object) -> CommandError:
    return CommandError(problem, verb=verb, **values)


def parse_due(text: str, verb: str, what: str = "DUE") -> DueSpec:
    """``2026-12-31``, ``10d``, ``5bd`` or ``2w``."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return DueSpec(on=date.fromisoformat(text))
        except ValueError:
            raise usage_error(verb, N_("{text} is not a real date."), text=text) from None
    try:
        return DueSpec(after=parse_duration(text, units=("d", "bd", "w")))
    except ValueError:
        raise usage_error(verb, N_("{what} {text!r} is not a date (YYYY-MM-DD) or a duration "
                                   "like 10d, 5bd or 2w."), what=what, text=echo(text)) from None


def parse_when(text: str, verb: str, what: str) -> When:
    """``2026-12-03`` or ``2026-12-03T06:10`` (ISO 8601, with or without an offset)."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return When(day=date.fromisoformat(text))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?([+-]\d{2}:?\d{2}|Z)?",
                        text):
            return When(moment=datetime.fromisoformat(text))
    except ValueError:
        pass
    raise usage_error(verb, N_("{what}:{text} is not a date (YYYY-MM-DD) or a date and time "
                               "(YYYY-MM-DDTHH:MM)."), what=what, text=echo(text))


def parse(text: str) -> Command:
    """Parse the words after the command prefix into a command."""
    if len(text) > MAX_COMMAND:
        if len(text) >= MAX_INBOUND - 100:  # cut at the edge: its real length is unknown
            raise CommandError(N_("That command is far longer than the limit of {limit} "
                                  "characters."), limit=MAX_COMMAND)
        raise CommandError(N_("That command is {length} characters long; the limit is "
                              "{limit}."), length=len(text), limit=MAX_COMMAND)
    tokens = tokenize(text.strip())
    if not tokens:
        raise CommandError(N_("The command is empty. Try: help"))
    verb, args = tokens[0].text.lower(), tokens[1:]
    parser = _PARSERS.get(verb)
    if parser is None:
        raise CommandError(N_("I do not know the command {word!r}. Commands: {verbs}."),
                           word=echo(tokens[0].text), verbs=", ".join(VERBS))
    return parser(verb, args)


def _help(verb: str, args: list[Token]) -> Command:
    topic = args[0].text.lower() if args else None
    if topic is not None and topic not in USAGE:
        raise CommandError(N_("There is no command {word!r}. Commands: {verbs}."),
                           word=echo(args[0].text), verbs=", ".join(VERBS))
    return Help(topic)


def _case(verb: str, args: list[Token]) -> str:
    if not args:
        raise usage_error(verb, N_("The case is missing."))
    case = args[0].text
    if not is_case_ref(case):
        raise usage_error(verb, N_("{case!r} is not a case reference (letters, digits and "
                                   "/ . - _, at most 64 characters, e.g. ICC-01/14-01/18)."),
                          case=echo(case))
    return case


def _open(verb: str, args: list[Token]) -> Command:
    case = _case(verb, args)
    options: dict[str, str] = {}
    events: dict[str, When] = {}
    measures: list[str] = []
    urgent, summary_words = False, list[str]()
    for token in args[1:]:
        key, sep, value = token.text.partition(":")
        if sep and not token.quoted and key.lower() == "measure" and not summary_words:
            measures.append(value)  # repeatable: the request's numbered measures
            options.setdefault("measure", value)
        elif sep and not token.quoted and key.lower() in RECORDABLE and not summary_words:
            if key.lower() in events:
                raise usage_error(verb, N_("{key}: is given twice."), key=key.lower())
            events[key.lower()] = parse_when(value, verb, key.lower())
        elif sep and not token.quoted and key.lower() in _OPTION_KEYS:
            if key.lower() in options:
                raise usage_error(verb, N_("{key}: is given twice."), key=key.lower())
            options[key.lower()] = value
        elif token.text.lower() == "urgent" and not summary_words and not token.quoted:
            urgent = True
        else:
            summary_words.append(token.text)
    if not options.get("to"):
        raise usage_error(verb, N_("Say which office the request goes to with to:OFFICE."))
    summary = " ".join(summary_words).strip()
    if not summary:
        raise usage_error(verb, N_("The request needs a summary after the options."))
    if len(summary) > MAX_SUMMARY:
        raise CommandError(N_("The summary is {length} characters long; the limit is {limit}. "
                              "Put the details in the thread."),
                           length=len(summary), limit=MAX_SUMMARY)
    basis = options.get("basis", "")
    if len(basis) > MAX_BASIS:
        raise CommandError(N_("The legal basis is {length} characters long; the limit is "
                              "{limit}."), length=len(basis), limit=MAX_BASIS)
    for name, what in (("person", N_("The person concerned is {length} characters long; the "
                                     "limit is {limit}.")),
                       ("measure", N_("The measure is {length} characters long; the limit is "
                                      "{limit}."))):
        for value in measures if name == "measure" else [options.get(name, "")]:
            if len(value) > MAX_BASIS:
                raise CommandError(what, length=len(value), limit=MAX_BASIS)
    _check_measures(measures)
    kind_text = options.get("kind", Kind.INFORMATION.value).lower()
    if kind_text not in {k.value for k in Kind}:
        raise usage_error(verb, N_("kind:{kind} is not a kind; use one of {kinds}."),
                          kind=echo(kind_text), kinds=", ".join(k.value for k in Kind))
    conf_text = options["conf"].lower() if "conf" in options else None
    if conf_text is not None and conf_text not in _CONF_ALIASES:
        raise usage_error(verb, N_("conf:{conf} is not a level; use restricted or "
                                   "confidential."), conf=echo(conf_text))
    due = parse_due(options["due"], verb) if "due" in options else None
    to, *also_to = _offices(verb, options["to"])
    return OpenRequest(case=case, to=to, also_to=tuple(also_to), summary=summary,
                       kind=Kind(kind_text),
                       due=due, urgent=urgent, basis=basis,
                       confidentiality=_CONF_ALIASES[conf_text] if conf_text else None,
                       via=options["via"].lower() if options.get("via") else None,
                       person=options.get("person", ""), measure=options.get("measure", ""),
                       events=tuple(events.items()), measures=tuple(measures))


def _check_measures(measures: list[str]) -> None:
    """Two or more ``measure:`` options are numbered measures: each must say something, and
    there are at most ``MAX_MEASURES``."""
    if len(measures) > 1 and not all(text.strip() for text in measures):
        raise usage_error("open", N_("A measure:\"…\" option is empty; say what each measure "
                                     "seeks."))
    if len(measures) > MAX_MEASURES:
        raise CommandError(TOO_MANY_MEASURES, limit=MAX_MEASURES, count=len(measures))


def _offices(verb: str, text: str) -> list[str]:
    """``to:A,B``: the requested offices, each named once."""
    slugs = [slug.strip().lower() for slug in text.split(",")]
    if any(not slug for slug in slugs):
        raise usage_error(verb, N_("to:{text} names an empty office; separate offices with "
                                   "commas, like to:de-gba,nl-om."), text=echo(text))
    twice = next((slug for i, slug in enumerate(slugs) if slug in slugs[:i]), None)
    if twice is not None:
        raise usage_error(verb, N_("to: names {slug} twice."), slug=echo(twice))
    return slugs


def _list(verb: str, args: list[Token]) -> Command:
    case = _case(verb, args)
    scope = args[1].text.lower() if len(args) > 1 else "open"
    if scope not in _LIST_SCOPES or len(args) > 2:
        raise usage_error(verb, N_("{words!r} is not a list filter."),
                          words=echo(" ".join(t.text for t in args[1:])))
    return ListCase(case, scope)


def _overdue(verb: str, args: list[Token]) -> Command:
    if args:
        raise usage_error(verb, N_("overdue takes nothing after it."))
    return ListOverdue()


def _request_id(verb: str, args: list[Token]) -> int:
    if not args:
        raise usage_error(verb, N_("The request id is missing."))
    number = parse_request_id(args[0].text)
    if number is None:
        raise usage_error(verb, N_("{word!r} is not a request id like R-7."),
                          word=echo(args[0].text))
    return number


def _rest(args: list[Token]) -> str:
    return " ".join(t.text for t in args).strip()


def _checked_text(verb: str, text: str) -> str:
    if len(text) > MAX_TEXT:
        raise CommandError(N_("That text is {length} characters long; the limit is {limit}."),
                           length=len(text), limit=MAX_TEXT)
    if verb in _TEXT_REQUIRED and not text:
        raise usage_error(verb, _TEXT_REQUIRED[verb], command=verb)
    return text


def _show(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) > 1:
        raise usage_error(verb, N_("show takes only the request id."))
    return Show(number)


_TRANSITION_OPTIONS = {"ack": ("received", "ref", "contact", "eta", "at"),
                       "answer": ("at", "conditions"), "decline": ("at",)}
#: The verbs that may name one measure of a request (``answer R-3/2 …``).
_MEASURE_VERBS = frozenset({"answer", "decline", "postpone"})
_MEASURE_RE = re.compile(r"^(?P<id>[^/\s]+)/(?P<k>[0-9]{1,3})$")


def _measure_ref(verb: str, args: list[Token]) -> tuple[int, int | None]:
    """``R-3`` → (3, None); ``R-3/2`` → (3, 2) for the verbs that settle one measure."""
    if args and "/" in args[0].text and not args[0].quoted and verb in _MEASURE_VERBS:
        match = _MEASURE_RE.match(args[0].text.strip())
        number = parse_request_id(match.group("id")) if match else None
        if match is None or number is None or int(match.group("k")) < 1:
            raise usage_error(verb, N_("{word!r} is not a request id like R-7 or a measure "
                                       "like R-7/2."), word=echo(args[0].text))
        return number, int(match.group("k"))
    return _request_id(verb, args), None


def _transition(verb: str, args: list[Token]) -> Command:
    number, measure = _measure_ref(verb, args)
    known = _TRANSITION_OPTIONS.get(verb, ())
    options: dict[str, str] = {}
    rest: list[Token] = []
    for token in args[1:]:
        key, sep, value = token.text.partition(":")
        if sep and not token.quoted and key.lower() in known:
            if key.lower() in options:
                raise usage_error(verb, N_("{key}: is given twice."), key=key.lower())
            options[key.lower()] = value
        else:
            rest.append(token)
    if len(options.get("conditions", "")) > MAX_CONDITIONS:
        raise CommandError(N_("The conditions on use are {length} characters long; the limit "
                              "is {limit}."), length=len(options["conditions"]),
                           limit=MAX_CONDITIONS)
    for name in ("ref", "contact"):
        if len(options.get(name, "")) > MAX_BASIS:
            raise CommandError(N_("That text is {length} characters long; the limit is "
                                  "{limit}."), length=len(options[name]), limit=MAX_BASIS)
    eta = parse_due(options["eta"], verb, "eta") if "eta" in options else None
    at = parse_when(options["at"], verb, "at") if "at" in options else None
    received = parse_when(options["received"], verb, "received") \
        if "received" in options else None
    return Transition(verb, number, _checked_text(verb, _rest(rest)), eta, at=at,
                      received=received, ref=options.get("ref", ""),
                      contact=options.get("contact", ""), measure=measure,
                      conditions=options.get("conditions", ""))


def _record(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) < 2:
        raise usage_error(verb, N_("Say which event and when, like received:2026-12-03 "
                                   "(events: {events})."), events=", ".join(RECORDABLE))
    key, sep, value = args[1].text.partition(":")
    if not sep or args[1].quoted or key.lower() not in RECORDABLE:
        raise usage_error(verb, N_("{word!r} is not an event; events: {events}."),
                          word=echo(args[1].text), events=", ".join(RECORDABLE))
    return Record(number, key.lower(), parse_when(value, verb, key.lower()),
                  _checked_text(verb, _rest(args[2:])))


def _extend_or_snooze(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) < 2:
        raise usage_error(verb, N_("The new date is missing."))
    due = parse_due(args[1].text, verb)
    reason = _checked_text(verb, _rest(args[2:]))
    if not reason:
        raise usage_error(verb, N_("{command} needs a reason."), command=verb)
    return Extend(number, due, reason) if verb == "extend" else Snooze(number, due, reason)


def _postpone(verb: str, args: list[Token]) -> Command:
    number, measure = _measure_ref(verb, args)
    if len(args) < 2:
        raise usage_error(verb, N_("Say until when, like 2027-03-01 or 30d."))
    until = parse_due(args[1].text, verb, "UNTIL")
    reason = _checked_text(verb, _rest(args[2:]))
    if not reason:
        raise usage_error(verb, N_("{command} needs a reason."), command=verb)
    if measure is not None:  # one measure (EIO art. 16(2)(b)): the request goes on
        return PostponeMeasure(number, measure, until, reason)
    return Postpone(number, until, reason)


def _forward(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    key, sep, value = args[1].text.partition(":") if len(args) > 1 else ("", "", "")
    if not sep or args[1].quoted or key.lower() != "to" or not value.strip():
        raise usage_error(verb, N_("Say which office it goes to with to:OFFICE."))
    if "," in value:
        raise usage_error(verb, N_("A request is forwarded to one office."))
    reason = _checked_text(verb, _rest(args[2:]))
    if not reason:
        raise usage_error(verb, N_("{command} needs a reason."), command=verb)
    return Forward(number, value.strip().lower(), reason)


def _assign(verb: str, args: list[Token]) -> Command:
    number = _request_id(verb, args)
    if len(args) != 2:
        raise usage_error(verb, N_("Name one user."))
    user = parse_user_ref(args[1].text)
    if user is None:
        raise usage_error(verb, N_("{word!r} is not a user like slack:U123ABC, "
                                   "matrix:@alice:example.org or console:alice."),
                          word=echo(args[1].text))
    return Assign(number, user)


def _who(verb: str, args: list[Token]) -> Command:
    if len(args) > 1:
        raise usage_error(verb, N_("Name one office, or none for all of them."))
    return Who(args[0].text.lower() if args else None)


_PARSERS = {
    "help": _help, "open": _open, "list": _list, "overdue": _overdue, "show": _show,
    "ack": _transition, "answer": _transition, "close": _transition, "reopen": _transition,
    "decline": _transition, "withdraw": _transition, "extend": _extend_or_snooze,
    "snooze": _extend_or_snooze, "assign": _assign, "incomplete": _transition,
    "complete": _transition, "who": _who, "record": _record,
    "postpone": _postpone, "consult": _transition, "resume": _transition,
    "forward": _forward,
}
