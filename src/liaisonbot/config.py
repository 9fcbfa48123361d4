"""Typed settings from TOML, validated once. ``load`` raises ``ConfigError`` naming every
problem (file, key, why); secrets come only from the environment."""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from liaisonbot.domain.calendar import BusinessCalendar, parse_working_days, parse_working_hours
from liaisonbot.domain.deadlines import ANSWER, EVENTS, Deadline
from liaisonbot.domain.directory import Directory
from liaisonbot.domain.durations import Duration, parse_duration
from liaisonbot.domain.instruments import REQUIRABLE, Instrument
from liaisonbot.domain.model import Confidentiality, Contact, Kind, Office, Policy
from liaisonbot.domain.refs import is_room_ref, is_user_ref
from liaisonbot.service.i18n import is_country, is_language, languages

DEFAULT_PATH = "config/liaisonbot.toml"
ENV_PATH = "LIAISONBOT_CONFIG"
#: The database URL with its password, from the environment; overrides ``[database] url``.
ENV_DATABASE_URL = "LIAISONBOT_DATABASE_URL"
_POLICY_KINDS = {k.value for k in Kind} | {"urgent"}
ENV_SLACK_SIGNING_SECRET = "LIAISONBOT_SLACK_SIGNING_SECRET"
ENV_SLACK_APP_TOKEN = "LIAISONBOT_SLACK_APP_TOKEN"
ENV_MATRIX_PICKLE_KEY = "LIAISONBOT_MATRIX_PICKLE_KEY"
#: The least a pickle key may be: it alone protects the crypto store and the cross-signing
#: keys at rest, so it must be a random secret, not a word.
PICKLE_KEY_MIN_LENGTH, PICKLE_KEY_MIN_DISTINCT = 32, 12


def weak_pickle_key(value: str) -> str | None:
    """Why ``value`` is too weak a pickle key (one sentence), or None."""
    if len(value) < PICKLE_KEY_MIN_LENGTH or len(set(value)) < PICKLE_KEY_MIN_DISTINCT:
        return (f"{ENV_MATRIX_PICKLE_KEY} is too weak: use at least {PICKLE_KEY_MIN_LENGTH} "
                "random characters, such as the output of `openssl rand -hex 32`")
    return None


class ConfigError(Exception):
    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__("\n".join(f"{path}: {p}" for p in problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class SlackSettings:
    enabled: bool = False
    mode: str = "http"
    api_base_url: str = "https://slack.com/api/"
    command: str = "/liaison"


@dataclass(frozen=True)
class MatrixSettings:
    enabled: bool = False
    homeserver: str = ""
    user_id: str = ""
    allowed_servers: tuple[str, ...] = ()
    data_dir: str = "var/matrix"
    device_name: str = "liaisonbot"
    #: Share room keys only with devices their owner has cross-signed (MSC4153).
    exclude_insecure_devices: bool = True


#: The case board's secrets, from the environment only.
ENV_WEB_CLIENT_SECRET = "LIAISONBOT_WEB_CLIENT_SECRET"
ENV_WEB_SESSION_KEY = "LIAISONBOT_WEB_SESSION_KEY"
_TOKEN_AUTH = ("client_secret_basic", "client_secret_post")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the read-only case board behind the offices' OpenID Connect login."""

    enabled: bool = False
    base_url: str = ""
    oidc_issuer: str = ""
    client_id: str = ""
    #: ID-token claim listing the user's office slugs.
    office_claim: str = "liaison_offices"
    #: ID-token claim listing the user's chat ids (user refs such as ``matrix:@a:x.org``):
    #: a user whose ids include a listed member of a party office sees confidential summaries.
    member_claim: str = "liaison_members"
    scope: str = "openid"
    token_auth: str = "client_secret_basic"
    session_minutes: int = 60
    client_secret: str = field(default="", repr=False)
    session_key: str = field(default="", repr=False)

    @property
    def secure(self) -> bool:
        return self.base_url.startswith("https://")


#: The Ed25519 key that signs audit checkpoints (URL-safe base64 of its 32-byte seed).
ENV_AUDIT_SIGNING_KEY = "LIAISONBOT_AUDIT_SIGNING_KEY"


@dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: present, the checkpoints' key must come from the environment
    (``run`` refuses to start without it); absent (the console, a demo), a key generated and
    kept in ``key_file`` (mode 0600) signs them. See the README's threat model."""

    configured: bool = False
    key_file: str = "var/audit-signing.key"
    signing_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    path: str
    database_url: str
    http_listen: tuple[str, int]
    directory: Directory
    slack: SlackSettings = field(default_factory=SlackSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    #: Offices that get the weekly report in their rooms ([reports] weekly = true | [slugs]).
    weekly_report: frozenset[str] = frozenset()
    web: WebSettings = field(default_factory=WebSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)


def config_path(given: str | None) -> str:
    return given or os.environ.get(ENV_PATH) or DEFAULT_PATH


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, why: str) -> None:
        self.items.append(f"{key}: {why}")


def _duration(raw: Any, key: str, problems: _Problems, units: tuple[str, ...] = ("d", "bd", "w"),
              default: Duration | None = None) -> Duration:
    try:
        return parse_duration(str(raw), units=units)
    except ValueError as error:
        problems.add(key, str(error))
        return default or Duration(0, "d")


def _policy(data: dict[str, Any], problems: _Problems) -> Policy:
    base = Policy()
    due = dict(base.due)
    for kind, raw in (data.get("due") or {}).items():
        if kind in _POLICY_KINDS:  # another name is an unknown kind (``_unknown_keys``)
            due[kind] = _duration(raw, f"policy.due.{kind}", problems)
    nudges = data.get("nudges") or {}
    offsets = tuple(_duration(raw, f"policy.nudges.after_due[{i}]", problems)
                    for i, raw in enumerate(nudges.get("after_due", ["0bd", "2bd", "5bd", "10bd"])))
    emergency = tuple(_duration(raw, f"policy.nudges.emergency_after_due[{i}]", problems,
                                units=("m", "h"))
                      for i, raw in enumerate(nudges.get(
                          "emergency_after_due", [str(d) for d in base.emergency_after_due])))
    escalate = nudges.get("escalate_from", base.escalate_from)
    if not isinstance(escalate, int) or escalate < 1:
        problems.add("policy.nudges.escalate_from", "must be a whole number of 1 or more")
        escalate = base.escalate_from
    return Policy(ack_within=_duration(data.get("ack_within", "5bd"), "policy.ack_within",
                                       problems),
                  due=due, nudges_after_due=offsets, escalate_from=escalate,
                  emergency_after_due=emergency)


_INSTRUMENT_KEYS = ("name", "short", "source", "ack_within", "ack_cite", "due", "due_cite",
                    "urgent", "urgent_cite", "requires", "scope", "not_bound", "conf",
                    "conf_cite")
_DEADLINE_KEYS = ("within", "from", "met_by", "cite", "extend", "extend_cite", "notice",
                  "urgent_only", "pause_cite", "postpone_cite")
_CLOCK_UNITS = ("h", "d", "bd", "w")


def _instruments(data: Any, problems: _Problems) -> dict[str, Instrument]:
    """``[instruments.NAME]``: name and source required, clocks optional, ``requires`` from
    ``REQUIRABLE``."""
    if not isinstance(data, dict):
        problems.add("instruments", "use one [instruments.NAME] table per instrument")
        return {}
    found: dict[str, Instrument] = {}
    for slug, raw in data.items():
        key = f"instruments.{slug}"
        if not isinstance(raw, dict):
            problems.add(key, "must be a table with name, source, ack_within, due, …")
            continue
        if not slug.replace("-", "").replace("_", "").isalnum() or slug != slug.lower():
            problems.add(key, "needs a lower-case name like eio")
        source = str(raw.get("source", "")).strip() or _cited_in(str(raw.get("name", "")))
        if not str(raw.get("name", "")).strip():
            problems.add(f"{key}.name", "is required (the instrument's display name)")
        if not source:
            problems.add(f"{key}.source", "is required (the legal source the instrument cites), "
                         'unless the name ends with it in brackets, like name = "European '
                         'Investigation Order (Directive 2014/41/EU)"')
        clocks = {name: _duration(raw[name], f"{key}.{name}", problems, units=_CLOCK_UNITS)
                  if name in raw else None for name in ("ack_within", "due", "urgent")}
        requires = raw.get("requires", [])
        if not isinstance(requires, list) or any(r not in REQUIRABLE for r in requires):
            problems.add(f"{key}.requires", "a list of fields from: " + ", ".join(REQUIRABLE))
            requires = [r for r in requires if r in REQUIRABLE] if isinstance(requires,
                                                                               list) else []
        scope = str(raw.get("scope", ""))
        if scope not in ("", "eu"):
            problems.add(f"{key}.scope", 'use "eu" (only between EU Member States bound by it) '
                         "or leave it out")
        not_bound = raw.get("not_bound", [])
        if not isinstance(not_bound, list) or any(
                not isinstance(c, str) or len(c) != 2 for c in not_bound):
            problems.add(f"{key}.not_bound", 'a list of country codes like ["DK", "IE"]')
            not_bound = []
        conf = raw.get("conf", Confidentiality.RESTRICTED.value)
        if conf not in {level.value for level in Confidentiality}:
            problems.add(f"{key}.conf", 'use "confidential" or "restricted" (the level its '
                         "requests have unless conf: on open says otherwise)")
            conf = Confidentiality.CONFIDENTIAL.value  # fail closed while it is refused
        found[slug] = Instrument(
            slug=slug, name=str(raw.get("name", slug)), source=source,
            short=str(raw.get("short", "")), requires=tuple(str(r) for r in requires),
            ack_cite=str(raw.get("ack_cite", "")), due_cite=str(raw.get("due_cite", "")),
            urgent_cite=str(raw.get("urgent_cite", "")),
            deadlines=_deadlines(raw.get("deadlines", {}), key, problems),
            scope=scope, not_bound=tuple(str(c).upper() for c in not_bound),
            conf=Confidentiality(conf), conf_cite=str(raw.get("conf_cite", "")), **clocks)
    return found


def _deadlines(data: Any, key: str, problems: _Problems) -> tuple[Deadline, ...]:
    """``[instruments.NAME.deadlines.DEADLINE]``: ``within`` a span ``from`` an event or
    another of its deadlines, met by an event (or the answer); an unknown event is refused."""
    if not isinstance(data, dict):
        problems.add(f"{key}.deadlines", "use one [instruments.NAME.deadlines.DEADLINE] table "
                     "per deadline")
        return ()
    found: list[Deadline] = []
    for name, raw in data.items():
        at = f"{key}.deadlines.{name}"
        if not isinstance(raw, dict):
            problems.add(at, "must be a table with within, from and cite")
            continue
        if "within" not in raw:
            problems.add(f"{at}.within", "is required (a span like 30d or 48h)")
        within = _duration(raw.get("within", "1d"), f"{at}.within", problems,
                           units=_CLOCK_UNITS)
        start, met_by = str(raw.get("from", "")), str(raw.get("met_by", ANSWER))
        if start not in EVENTS and start not in data:
            problems.add(f"{at}.from", f"{start!r} is not an event ({', '.join(EVENTS)}) "
                         "nor another deadline of this instrument")
        if start == name and start not in EVENTS:
            problems.add(f"{at}.from", "a deadline cannot run from itself")
        if met_by != ANSWER and met_by not in EVENTS:
            problems.add(f"{at}.met_by", f"{met_by!r} is not an event ({', '.join(EVENTS)}) "
                         "nor answer")
        extend = _duration(raw["extend"], f"{at}.extend", problems, units=_CLOCK_UNITS) \
            if "extend" in raw else None
        if not str(raw.get("cite", "")).strip():
            problems.add(f"{at}.cite", "is required (the article that sets the deadline)")
        if extend is not None and not str(raw.get("extend_cite", "")).strip():
            problems.add(f"{at}.extend_cite", "is required with extend (the article that "
                         "allows the extension)")
        found.append(Deadline(
            name=name, within=within, start=start, cite=str(raw.get("cite", "")),
            met_by=met_by, extend=extend, extend_cite=str(raw.get("extend_cite", "")),
            notice=str(raw.get("notice", "")), urgent_only=bool(raw.get("urgent_only", False)),
            pause_cite=str(raw.get("pause_cite", "")).strip(),
            postpone_cite=str(raw.get("postpone_cite", "")).strip()))
    return tuple(found)


def _holidays(raw: Any, key: str, problems: _Problems) -> Any:
    """The office's ``is_holiday(day)``. Offices with the same holiday list share one (one
    ``holidays`` calendar per country and one day cache, not one per office: with hundreds of
    offices per country those copies were most of a day's memory growth)."""
    items = tuple(str(item) for item in ([raw] if isinstance(raw, str) else list(raw or [])))
    unknown = [text for text in items if _holiday_part(text) is None]
    for text in unknown:
        problems.add(key, f"{text!r} is neither a date (YYYY-MM-DD) nor a known country code")
    return _shared_holidays(tuple(text for text in items if text not in unknown))


def _holiday_part(text: str) -> tuple[str, Any] | None:
    """``("date", date)`` or ``("country", calendar)``; None when it is neither."""
    try:
        return "date", date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return "country", _country_holidays(text)
    except NotImplementedError:
        return None


@functools.cache
def _country_holidays(text: str) -> Any:
    import holidays as holiday_lib

    country, _, subdiv = text.partition("-")
    return holiday_lib.country_holidays(country.upper(), subdiv=subdiv or None)


@functools.cache
def _shared_holidays(items: tuple[str, ...]) -> Callable[[date], bool]:
    dates: set[date] = set()
    countries: list[Any] = []
    for text in items:
        found = _holiday_part(text)
        if found is not None and found[0] == "date":
            dates.add(found[1])
        elif found is not None:
            countries.append(found[1])

    @functools.lru_cache(maxsize=4096)
    def is_holiday(day: date) -> bool:
        return day in dates or any(day in calendar for calendar in countries)

    return is_holiday


def _office(data: dict[str, Any], i: int, problems: _Problems) -> Office | None:
    key = f"offices[{i}]"
    slug = str(data.get("slug", ""))
    if not slug or not slug.replace("-", "").replace("_", "").isalnum() or slug != slug.lower():
        problems.add(f"{key}.slug", "needs a lower-case slug like icc-otp")
    try:
        tz = ZoneInfo(str(data.get("timezone", "UTC")))
    except (ZoneInfoNotFoundError, ValueError):
        problems.add(f"{key}.timezone", f"unknown time zone {data.get('timezone')!r}")
        tz = ZoneInfo("UTC")
    try:
        opens, closes = parse_working_hours(str(data.get("working_hours", "09:00-17:30")))
    except ValueError as error:
        problems.add(f"{key}.working_hours", str(error))
        opens, closes = parse_working_hours("09:00-17:30")
    try:
        days = parse_working_days(str(data.get("working_days", "Mon-Fri")))
    except ValueError as error:
        problems.add(f"{key}.working_days", str(error))
        days = frozenset(range(5))
    rooms = tuple(str(r) for r in data.get("rooms", []))
    for room in rooms:
        if not is_room_ref(room):
            problems.add(f"{key}.rooms", f"{room!r} is not a room like slack:C0123ABC, "
                         "matrix:!abc:example.org or console:name")
    if not rooms:
        problems.add(f"{key}.rooms", "an office needs at least one room")
    people = {field_name: _users(data.get(field_name, []), f"{key}.{field_name}", problems)
              for field_name in ("members", "escalation", "on_call")}
    language = str(data.get("language", "en"))
    if language not in languages():
        problems.add(f"{key}.language", f"no catalog for language {language!r} (known: "
                     f"{', '.join(languages())}); add src/liaisonbot/locale/{language}/"
                     "LC_MESSAGES/liaisonbot.po first")
        language = "en"
    calendar = BusinessCalendar(tz=tz, opens=opens, closes=closes, days=days,
                                is_holiday=_holidays(data.get("holidays"), f"{key}.holidays",
                                                     problems))
    return Office(slug=slug, name=str(data.get("name") or slug), calendar=calendar, rooms=rooms,
                  members=people["members"], escalation=people["escalation"],
                  language=language, on_call=people["on_call"],
                  contacts=_contacts(data.get("contacts"), f"{key}.contacts", problems),
                  country=_country(data.get("country"), f"{key}.country", problems),
                  accepts_languages=_languages(data.get("accepts_languages"),
                                               f"{key}.accepts_languages", problems))


_NOT_A_USER = "is not a user like slack:U123ABC, matrix:@alice:example.org or console:alice"
#: A phone number in E.164 form: ``+``, a country code and at most 15 digits in all.
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CONTACT_FORM = ('a list of tables like { name = "…", role = "…", phone = "+31…", '
                 'languages = ["en"] }')


def _users(raw: Any, key: str, problems: _Problems) -> tuple[str, ...]:
    """A list of user references (``members``, ``escalation``, ``on_call``)."""
    if not isinstance(raw, list):
        problems.add(key, 'needs a list of users like ["matrix:@alice:example.org"]')
        return ()
    users = tuple(str(u) for u in raw)
    for user in users:
        if not is_user_ref(user):
            problems.add(key, f"{user!r} {_NOT_A_USER}")
    return tuple(u for u in users if is_user_ref(u))


def _languages(raw: Any, key: str, problems: _Problems) -> tuple[str, ...]:
    """A non-empty list of language codes (``de``, ``en``, ``pt-BR``); None: not given."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        problems.add(key, 'needs a list of language codes like ["de", "en"]')
        return ()
    codes = tuple(str(code) for code in raw)
    for code in codes:
        if not is_language(code):
            problems.add(key, f"{code!r} is not a language code like de, en or fr")
    return tuple(code for code in codes if is_language(code))


def _country(raw: Any, key: str, problems: _Problems) -> str | None:
    if raw is None:
        return None
    if not is_country(str(raw)):
        problems.add(key, f"{raw!r} is not an ISO 3166-1 alpha-2 country code like NL "
                     "(omit it for an international body)")
        return None
    return str(raw)


def _contacts(raw: Any, key: str, problems: _Problems) -> tuple[Contact, ...]:
    """``contacts = [{ name, role, user?, phone?, email?, languages }]``: each needs a name, a
    role, the languages they work in, and one way to reach them at least."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.add(key, _CONTACT_FORM)
        return ()
    return tuple(_contact(item, f"{key}[{i}]", problems) for i, item in enumerate(raw))


def _contact(data: dict[str, Any], key: str, problems: _Problems) -> Contact:
    name, role = str(data.get("name", "")).strip(), str(data.get("role", "")).strip()
    if not name:
        problems.add(f"{key}.name", "is required (the person's name)")
    if not role:
        problems.add(f"{key}.role", "is required (their role, like liaison prosecutor)")
    user, phone, email = (str(data[k]) if data.get(k) is not None else None
                          for k in ("user", "phone", "email"))
    if user is not None and not is_user_ref(user):
        problems.add(f"{key}.user", f"{user!r} {_NOT_A_USER}")
    if phone is not None and not _E164.match(phone):
        problems.add(f"{key}.phone", f"{phone!r} is not a phone number in E.164 form "
                     "(+ and digits only, like +31701234567)")
    if email is not None and not _EMAIL.match(email):
        problems.add(f"{key}.email", f"{email!r} is not an email address like "
                     "liaison@example.org")
    if not (user or phone or email):
        problems.add(key, "gives no way to reach them: add a user, phone or email")
    languages_ = _languages(data.get("languages"), f"{key}.languages", problems)
    if "languages" not in data:
        problems.add(f"{key}.languages", 'is required (the languages they work in, like '
                     '["en", "fr"])')
    return Contact(name=name, role=role, user=user, phone=phone, email=email,
                   languages=languages_)


def _listen(raw: str, problems: _Problems) -> tuple[str, int]:
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        problems.add("http.listen", f"{raw!r} is not HOST:PORT like 127.0.0.1:3000")
        return "127.0.0.1", 3000
    return host.strip("[]"), int(port)


def _platforms(data: dict[str, Any], problems: _Problems) -> tuple[SlackSettings, MatrixSettings]:
    raw_slack, raw_matrix = data.get("slack") or {}, data.get("matrix") or {}
    slack = SlackSettings(enabled=bool(raw_slack.get("enabled", bool(raw_slack))),
                          mode=str(raw_slack.get("mode", "http")),
                          api_base_url=str(raw_slack.get("api_base_url",
                                                         "https://slack.com/api/")),
                          command=str(raw_slack.get("command", "/liaison")))
    if slack.mode not in ("http", "socket"):
        problems.add("slack.mode", f"{slack.mode!r} is not http or socket")
    matrix = MatrixSettings(enabled=bool(raw_matrix.get("enabled", bool(raw_matrix))),
                            homeserver=str(raw_matrix.get("homeserver", "")),
                            user_id=str(raw_matrix.get("user_id", "")),
                            allowed_servers=tuple(raw_matrix.get("allowed_servers", [])),
                            data_dir=str(raw_matrix.get("data_dir", "var/matrix")),
                            device_name=str(raw_matrix.get("device_name", "liaisonbot")),
                            exclude_insecure_devices=raw_matrix.get(
                                "exclude_insecure_devices", True))
    if not isinstance(matrix.exclude_insecure_devices, bool):
        problems.add("matrix.exclude_insecure_devices", "needs true or false")
    if matrix.enabled:
        if not matrix.homeserver.startswith(("http://", "https://")):
            problems.add("matrix.homeserver", "needs a URL like https://matrix.example.org")
        if not is_user_ref(f"matrix:{matrix.user_id}"):
            problems.add("matrix.user_id", "needs a user id like @liaisonbot:example.org")
    return slack, matrix


def _check_rooms(offices: list[Office], problems: _Problems) -> None:
    seen_slugs: set[str] = set()
    seen_rooms: dict[str, str] = {}
    for office in offices:
        if office.slug in seen_slugs:
            problems.add("offices", f"the slug {office.slug!r} is used twice")
        seen_slugs.add(office.slug)
        for room in office.rooms:
            if room in seen_rooms and seen_rooms[room] != office.slug:
                problems.add("offices", f"the room {room} is bound to both "
                             f"{seen_rooms[room]} and {office.slug}")
            seen_rooms[room] = office.slug


def _weekly(data: dict[str, Any], offices: list[Office], problems: _Problems) -> frozenset[str]:
    raw = data.get("weekly", False)
    slugs = {o.slug for o in offices}
    if isinstance(raw, bool):
        return frozenset(slugs if raw else ())
    if not isinstance(raw, list):
        problems.add("reports.weekly", "use true, false or a list of office slugs")
        return frozenset()
    for slug in raw:
        if slug not in slugs:
            problems.add("reports.weekly", f"there is no office {slug!r}")
    return frozenset(str(s) for s in raw if s in slugs)


def _cited_in(name: str) -> str:
    """The source a name cites in closing brackets: ``EIO (Directive 2014/41/EU)`` → the
    directive (the contract's example profile gives its source that way)."""
    name = name.strip()
    if not name.endswith(")") or "(" not in name:
        return ""
    return name[name.rindex("(") + 1:-1].strip()


def _url_ok(url: str) -> bool:
    """https anywhere; plain http only on loopback (trials and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK


def _web(raw: dict[str, Any], problems: _Problems) -> WebSettings:
    enabled = bool(raw.get("enabled", bool(raw)))
    minutes = raw.get("session_minutes", 60)
    web = WebSettings(
        enabled=enabled, base_url=str(raw.get("base_url", "")).rstrip("/"),
        oidc_issuer=str(raw.get("oidc_issuer", "")).rstrip("/"),
        client_id=str(raw.get("client_id", "")),
        office_claim=str(raw.get("office_claim", "liaison_offices")),
        member_claim=str(raw.get("member_claim", "liaison_members")),
        scope=str(raw.get("scope", "openid")), token_auth=str(raw.get("token_auth",
                                                                     _TOKEN_AUTH[0])),
        session_minutes=minutes if isinstance(minutes, int) else 60,
        client_secret=secret(ENV_WEB_CLIENT_SECRET) or "",
        session_key=secret(ENV_WEB_SESSION_KEY) or "")
    if not enabled:
        return web
    if not _url_ok(web.base_url):
        problems.add("web.base_url", "needs an https URL (plain http only on 127.0.0.1 or "
                     "localhost), like https://liaison.example.org")
    if not _url_ok(web.oidc_issuer):
        problems.add("web.oidc_issuer", "needs the issuer's https URL, like "
                     "https://login.example.org/realms/liaison")
    if not web.client_id:
        problems.add("web.client_id", "needs the client id registered at the issuer")
    for key in ("office_claim", "member_claim"):
        if not getattr(web, key):
            problems.add(f"web.{key}", "needs the name of an ID-token claim")
    if "openid" not in web.scope.split():
        problems.add("web.scope", "must include openid")
    if web.token_auth not in _TOKEN_AUTH:
        problems.add("web.token_auth", "use client_secret_basic or client_secret_post")
    if not isinstance(minutes, int) or not 5 <= minutes <= 720:
        problems.add("web.session_minutes", "must be a whole number of minutes from 5 to 720")
    if not web.client_secret:
        problems.add("web", f"{ENV_WEB_CLIENT_SECRET} is not set in the environment "
                     "(the client secret registered at the issuer)")
    if not web.session_key:
        problems.add("web", f"{ENV_WEB_SESSION_KEY} is not set in the environment (a Fernet "
                     "key: URL-safe base64 of 32 random bytes)")
    elif not _fernet_key(web.session_key):
        problems.add("web", f"{ENV_WEB_SESSION_KEY} is not a Fernet key (URL-safe base64 "
                     "of 32 random bytes)")
    return web


def _fernet_key(key: str) -> bool:
    import base64
    import binascii

    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


@dataclass(frozen=True)
class _Table:
    """A table's known keys, each with the schema of its value (None: a plain value)."""

    keys: Mapping[str, _Schema]
    noun: str = "key"


@dataclass(frozen=True)
class _Each:
    """A table of names the file chooses (``[instruments.NAME]``), each of one schema."""

    item: _Schema


@dataclass(frozen=True)
class _Rows:
    """An array of tables (``[[offices]]``, ``contacts``), each of one schema."""

    item: _Schema


_Schema = _Table | _Each | _Rows | None


def _plain(*names: str, noun: str = "key") -> _Table:
    return _Table(dict.fromkeys(names), noun)


_CONTACT_KEYS = ("name", "role", "user", "phone", "email", "languages")
_OFFICE_KEYS: dict[str, _Schema] = {
    **dict.fromkeys(("slug", "name", "timezone", "working_hours", "working_days", "holidays",
                     "language", "country", "accepts_languages", "on_call", "rooms",
                     "members", "escalation")),
    "contacts": _Rows(_plain(*_CONTACT_KEYS))}
#: Every table the file may hold, and what each knows: an unknown key anywhere is a problem
#: (``check-config`` names it with the nearest known one; ``run`` refuses to start).
SCHEMA = _Table({
    "database": _plain("url"),
    "http": _plain("listen"),
    "slack": _plain(*(f.name for f in fields(SlackSettings))),
    "matrix": _plain(*(f.name for f in fields(MatrixSettings))),
    "policy": _Table({"ack_within": None, "due": _plain(*sorted(_POLICY_KINDS), noun="kind"),
                      "nudges": _plain("after_due", "escalate_from",
                                                  "emergency_after_due")}),
    "reports": _plain("weekly"),
    "instruments": _Each(_Table({**dict.fromkeys(_INSTRUMENT_KEYS),
                                 "deadlines": _Each(_plain(*_DEADLINE_KEYS))})),
    "web": _plain(*(f.name for f in fields(WebSettings)
                    if f.name not in ("client_secret", "session_key"))),
    "offices": _Rows(_Table(_OFFICE_KEYS)),
    # the checkpoints' key itself comes from LIAISONBOT_AUDIT_SIGNING_KEY, never the file
    "audit": _plain("key_file"),
}, noun="section")


def _unknown_keys(value: Any, schema: _Schema, key: str, problems: _Problems) -> None:
    """Name every key ``schema`` does not know, with the nearest known one. Values of the
    wrong shape are left to their own parser, which says what it needs."""
    if isinstance(schema, _Rows):
        for i, item in enumerate(value if isinstance(value, list) else []):
            _unknown_keys(item, schema.item, f"{key}[{i}]", problems)
    elif isinstance(schema, _Each) and isinstance(value, dict):
        for name, item in value.items():
            _unknown_keys(item, schema.item, f"{key}.{name}", problems)
    elif isinstance(schema, _Table) and isinstance(value, dict):
        for name, item in value.items():
            at = f"{key}.{name}" if key else name
            if name in schema.keys:
                _unknown_keys(item, schema.keys[name], at, problems)
            else:
                problems.add(at, _unknown(name, schema))


def _unknown(name: str, table: _Table) -> str:
    """``unknown key; did you mean working_hours?`` (or the known keys when none is near)."""
    known = list(table.keys)
    near = difflib.get_close_matches(name.lower(), known, n=1, cutoff=0.6)
    if near:
        return f"unknown {table.noun}; did you mean {near[0]}?"
    return f"unknown {table.noun}; known: {', '.join(sorted(known))}"


def unknown_keys(data: dict[str, Any]) -> list[str]:
    """Every key of ``data`` (a config, or part of one from its top) that no table knows, as
    ``key: why`` problems naming the nearest known key."""
    problems = _Problems()
    _unknown_keys(data, SCHEMA, "", problems)
    return problems.items


def parse(data: dict[str, Any], path: str) -> Settings:
    problems = _Problems()
    problems.items.extend(unknown_keys(data))
    file_url = str((data.get("database") or {}).get("url", "sqlite+aiosqlite:///var/liaisonbot.db"))
    if urlsplit(file_url).password:
        problems.add("database.url", "holds a password; secrets stay out of the file: set "
                     "LIAISONBOT_DATABASE_URL (or PGPASSWORD) in the environment instead")
    database_url = os.environ.get(ENV_DATABASE_URL) or file_url
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        problems.add("database.url", "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://…")
    listen = _listen(str((data.get("http") or {}).get("listen", "127.0.0.1:3000")), problems)
    policy = _policy(data.get("policy") or {}, problems)
    instruments = _instruments(data.get("instruments") or {}, problems)
    raw_offices = data.get("offices") or []
    if not isinstance(raw_offices, list) or not all(isinstance(o, dict) for o in raw_offices):
        problems.add("offices", "write each office as an [[offices]] table")
        raw_offices = []
    offices = [o for i, raw in enumerate(raw_offices) if (o := _office(raw, i, problems))]
    if not offices:
        problems.add("offices", "at least one [[offices]] entry is needed")
    _check_rooms(offices, problems)
    slack, matrix = _platforms(data, problems)
    weekly = _weekly(data.get("reports") or {}, offices, problems)
    web = _web(data.get("web") or {}, problems)
    audit = _audit(data, problems)
    if problems.items:
        raise ConfigError(path, problems.items)
    return Settings(path=path, database_url=database_url, http_listen=listen,
                    directory=Directory(tuple(offices), policy, instruments), slack=slack,
                    matrix=matrix, weekly_report=weekly, web=web, audit=audit)


def _audit(data: dict[str, Any], problems: _Problems) -> AuditSettings:
    raw = data.get("audit")
    key = secret(ENV_AUDIT_SIGNING_KEY) or ""
    if key:
        from liaisonbot.domain.checkpoint import key_from_seed

        try:
            key_from_seed(key)
        except ValueError as error:
            problems.add("audit", f"{ENV_AUDIT_SIGNING_KEY} is not an Ed25519 key ({error}; "
                         "URL-safe base64 of a 32-byte seed)")
    if raw is None:
        return AuditSettings(signing_key=key)
    if not isinstance(raw, dict):
        problems.add("audit", "must be a table ([audit])")
        return AuditSettings(configured=True, signing_key=key)
    return AuditSettings(configured=True, key_file=str(raw.get("key_file",
                                                               AuditSettings.key_file)),
                         signing_key=key)


def load(path: str) -> Settings:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(path, ["the file does not exist (set --config or $LIAISONBOT_CONFIG)"])
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, [f"not valid TOML: {error}"]) from None
    return parse(data, path)


def secret(name: str) -> str | None:
    """A secret from the environment (never from the file)."""
    return os.environ.get(name) or None


def missing_secrets(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    """Secrets an enabled platform cannot do without, as ``key: why`` problems. Each one's
    absence would open a door (unverified Slack requests, an unencrypted crypto store) or
    leave the platform unable to log in: ``run`` refuses to start, ``check-config`` names it.
    There is never a default standing in for a missing secret."""
    env = os.environ if env is None else env
    problems: list[str] = []

    def absent(name: str) -> bool:
        return not (env.get(name) or "").strip()

    if settings.slack.enabled and settings.slack.mode == "http" \
            and absent(ENV_SLACK_SIGNING_SECRET):
        problems.append(f"slack.mode: {ENV_SLACK_SIGNING_SECRET} is not set; http mode "
                        "verifies every request to /slack/events with it")
    if settings.slack.enabled and settings.slack.mode == "socket" \
            and absent(ENV_SLACK_APP_TOKEN):
        problems.append(f"slack.mode: {ENV_SLACK_APP_TOKEN} is not set; socket mode "
                        "connects with this xapp- token")
    if settings.audit.configured and absent(ENV_AUDIT_SIGNING_KEY):
        problems.append(f"audit: {ENV_AUDIT_SIGNING_KEY} is not set; with [audit] the "
                        "checkpoints partners keep are signed only with a key from the "
                        "environment")
    if settings.matrix.enabled:
        if absent(ENV_MATRIX_PICKLE_KEY):
            problems.append(f"matrix: {ENV_MATRIX_PICKLE_KEY} is not set; it encrypts the "
                            "Matrix crypto store")
        elif weak := weak_pickle_key(env.get(ENV_MATRIX_PICKLE_KEY, "").strip()):
            problems.append(f"matrix: {weak}")
        if absent("LIAISONBOT_MATRIX_ACCESS_TOKEN") and absent("LIAISONBOT_MATRIX_PASSWORD"):
            problems.append("matrix: neither LIAISONBOT_MATRIX_ACCESS_TOKEN nor "
                            "LIAISONBOT_MATRIX_PASSWORD is set; one logs the bot in")
    return problems
