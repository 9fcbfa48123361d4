"""Every sentence the bot says, in one place.

The English text of each constant is its gettext msgid: ``service.i18n`` translates it at render
time for the reader's language (``locale/LANG/LC_MESSAGES/liaisonbot.po``). ``N_`` marks a
sentence for extraction (``pybabel extract``), ``Np_`` a counted phrase (singular, plural) for
``ngettext``, ``Nc_`` a word with a context (``pgettext``). A constant added without ``N_`` is still checked by tests/test_i18n.py.
"""

# ruff: noqa: E501 (one sentence per line)
from __future__ import annotations

from collections.abc import Callable

from liaisonbot.domain.deadlines import RECORDABLE
from liaisonbot.domain.grammar import USAGE, VERBS


def N_(text: str) -> str:  # gettext's conventional marker
    return text


def Np_(singular: str, plural: str) -> tuple[str, str]:
    return singular, plural


def Nc_(context: str, text: str) -> tuple[str, str]:
    """A word whose translation depends on where it stands (gettext ``msgctxt``)."""
    return context, text


STATUS_VERB = {"ack": N_("acknowledged"), "answer": N_("answered"), "close": N_("closed"),
               "reopen": N_("reopened"), "decline": N_("declined"), "withdraw": N_("withdrawn"),
               "extend": N_("extended"), "assign": N_("assigned"), "snooze": N_("snoozed")}

NOT_BOUND = N_("This room is not bound to any office, so only help works here.")
CHANGED_MEANWHILE = N_("{ref} changed meanwhile (someone else acted on it first); look at it with show {ref} and try again.")
INTERNAL_ERROR = N_("Something went wrong on my side and nothing was changed; please try again.")
UNDECRYPTABLE = N_("I could not read a message here (it was encrypted with keys I do not have); please send it again.")
UNKNOWN_OFFICE = N_("There is no office {slug!r}. Offices: {known}.")
SAME_OFFICE = N_("A request goes to another office; {slug} is your own.")
NOT_PARTY = N_("{ref} does not exist or {office} is not party to it.")
NOT_MEMBER = N_("Only the listed members of {office} act for it; ask one of them.")
WRONG_SIDE = N_("Only the {side} office ({office}) can {verb} {ref}.")
WRONG_STATUS = N_("{ref} is {status}, so it cannot be {done} now.")
PAST_DATE = N_("{what} {value} is already past; give a later date.")
TOO_FAR = N_("{what} {value} is too far ahead; give one within {years} years.")
NOTHING_OPEN = N_("No {scope} requests in {case} that {office} is party to.")
NOTHING_OVERDUE = N_("Nothing overdue for {office}.")
OPENED = N_("{ref} opened: {case}, {kind} from {requesting} to {requested}, due {due}.")
CONF_OPENED = N_("The summary is shown only to the listed members of both offices, by direct message.")
DONE = N_("{ref} is {status} now.")
DONE_FIELD = N_("{ref}: {what}.")
NOTE_BY = N_("{ref} {done} by {who} ({office})")
CONF_TEXT_IN_DM = N_("(text sent to the listed members by direct message)")
RELAYED_FILE = N_("{who} shared a file in {ref}: {name} ({size}). Files are not copied across; ask {office} to send it through your secure channel.")
SHOW_DM = N_("{ref} (confidential) in full, as you are a listed member of {office}:")
HELP_HEADER = N_("liaisonbot commands (type them after !liaison or /liaison):")
HELP_TAIL = N_("Dates: YYYY-MM-DD, Nd, Nbd (business days) or Nw. help COMMAND shows one.")
HELP_RECORD = N_("Events: {events}. Give the day (YYYY-MM-DD) or the moment (YYYY-MM-DDTHH:MM) it happened; the instrument's deadlines run from them.")


def help_text(topic: str | None, tr: Callable[[str], str] = N_) -> str:
    """Help in the reader's language (``tr``); the usage lines are command words and stay."""
    if topic == "record":
        return "\n".join([tr(USAGE_LINE).format(usage=USAGE[topic]),
                          tr(HELP_RECORD).format(events=", ".join(RECORDABLE))])
    if topic == "open":
        return "\n".join([tr(USAGE_LINE).format(usage=USAGE[topic]), tr(HELP_OPEN_CONF),
                          tr(HELP_LAW[topic])])
    if topic in HELP_LAW:
        return "\n".join([tr(USAGE_LINE).format(usage=USAGE[topic]), tr(HELP_LAW[topic])])
    if topic:
        return tr(USAGE_LINE).format(usage=USAGE[topic])
    return "\n".join([tr(HELP_HEADER), *(f"  {USAGE[v]}" for v in VERBS), tr(HELP_TAIL)])


def plural(count: int, word: str) -> str:
    """English only (kept for callers outside the presenter); posts use ``Np_`` phrases."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"

NUDGE_ACK = N_("Reminder: {ref} ({case}, {kind} from {requesting}) has not been acknowledged; it was due for acknowledgement {ack_due}. Please ack {ref} [eta:DATE].")
NUDGE_ANSWER = N_("Reminder {number}: {ref} ({case}, {kind} from {requesting}) was due {due} and is {late} late. Please answer {ref}, or extend it with a reason.")
NUDGE_EMERGENCY = N_("This is an emergency deadline ({cite}): reminders go out at any hour, to the on-call contacts too.")
NUDGE_MERGED = N_("({merged} reminders fell due while the desk was offline; this is one notice.)")
NUDGE_ESCALATE = N_("Escalated to {people}.")
NUDGE_NOTE = N_("Reminder {number} sent to {requested} for {ref}.")
DIGEST_TITLE = N_("Morning digest for {office}: {overdue} overdue, {soon} due within two business days.")
DIGEST_CASE = N_("Case {case}:")
RELAY_EDITED = N_("{who} (edited): {text}")
RELAY_DELETED = N_("{who} deleted a relayed message.")

# ---------------------------------------------------------------------- legal clocks (issue 13)
STATUS_VERB.update({"incomplete": N_("marked incomplete"), "complete": N_("completed")})
UNKNOWN_INSTRUMENT = N_("There is no instrument {slug!r}. Instruments: {known}.")
NO_INSTRUMENTS = N_("No instruments are configured here, so via:{slug} cannot be used; open the request without via:.")
MISSING_FIELDS = N_("A request via {instrument} must carry {fields} ({source}); add it and open again.")
CARD_CLOCKS = N_("{instrument} · ack within {ack}{ack_cite} · answer by {due} · legal time {legal}{due_cite}")
CARD_NO_DEADLINE = N_("{instrument} · no legal deadline ({source}) · answer by {due}")
CARD_MISSING = N_("Missing: {missing} (waiting for {office} to complete it)")
CARD_WAITING = N_("waiting for {office}")
CARD_PERSON = N_("Person concerned: {person}")
CARD_MEASURE = N_("Measure: {measure}")
CHANGE_PAUSED = N_(" · clocks stopped until {office} completes it")
CHANGE_RESUMED = N_(" · clocks resume, due now {due} (moved by {days})")
#: An instrument's deadlines that run on while the request is incomplete (none of them is
#: stopped by the law): only the chasing pauses.
CHANGE_CHASE_PAUSED = N_(" · reminders paused until {office} completes it; the legal deadlines run on")
CHANGE_CHASE_RESUMED = N_(" · reminders resume; the legal deadlines did not move, due {due}")
NUDGE_INCOMPLETE = N_("Reminder {number}: {ref} ({case}, {kind} to {requested}) is incomplete since {since}; {requested} is waiting for: {missing}. Please complete {ref} TEXT.")
NUDGE_ETA = N_("Reminder: you expected to answer {ref} ({case}, {kind} from {requesting}) by {eta}. Please answer {ref}, or give a new date with ack {ref} eta:DATE.")
LIST_INCOMPLETE = Np_("{count} incomplete (clocks stopped, waiting for completion).",
                      "{count} incomplete (clocks stopped, waiting for completion).")
STATS_TITLE = N_("Legal clocks (time spent incomplete not counted):")
STATS_ROW = N_("- {group}: acknowledged in {ack} (p90 {ack90}), answered in {answer} (p90 {answer90}); within the legal time {share}; incomplete {paused} over {paused_n}")
STATS_NONE = N_("- no requests yet")

# ---------------------------------------------------------------------- languages (issue 14)
#: A Babel (CLDR) date pattern: each language writes its own (``EEE`` weekday, ``MMM`` month).
DATE_TIME = N_("EEE yyyy-MM-dd HH:mm")
NOW = N_("now")
USAGE_LINE = N_("Usage: {usage}")
STATUS_NAMES = {"open": N_("open"), "acknowledged": N_("acknowledged"),
                "answered": N_("answered"), "closed": N_("closed"), "declined": N_("declined"),
                "withdrawn": N_("withdrawn"), "incomplete": N_("incomplete")}
SIDE_NAMES = {"requesting": N_("requesting"), "requested": N_("requested")}
SCOPE_NAMES = {"open": N_("open"), "overdue": N_("overdue"), "mine": N_("mine"), "all": N_("all")}
#: History actions (stored in English) and detail keys, as ``show`` writes them.
HISTORY_ACTIONS = {"opened": N_("opened"), "nudged": N_("nudged"), "relayed": N_("relayed"),
                   "relay edited": N_("relay edited"), "relay deleted": N_("relay deleted")}
DETAIL_KEYS = {"due": N_("due"), "until": N_("until"), "eta": N_("eta"), "note": N_("note"),
               "reason": N_("reason"), "answer": N_("answer"), "assignee": N_("assignee"),
               "status": N_("status"), "missing": N_("missing"), "text": N_("text"),
               "kind": N_("kind"), "number": N_("number"), "merged": N_("merged"),
               "escalated": N_("escalated"), "paused_business_days": N_("paused business days"),
               "summary": N_("summary"), "basis": N_("basis"), "case": N_("case"),
               "to": N_("to"), "urgent": N_("urgent"), "confidentiality": N_("confidentiality"),
               "via": N_("via"), "person": N_("person"), "measure": N_("measure"),
               "room": N_("room"), "source": N_("source"), "files": N_("files"),
               "event": N_("event"), "events": N_("events"), "at": N_("at"),
               "was": N_("was"), "deadline": N_("deadline"), "legal": N_("legal date"),
               "limit": N_("limit"), "cite": N_("article"), "received": N_("received"),
               "ref": N_("their reference"), "contact": N_("contact")}
DUE_DATE = N_("The due date")
NEW_DUE_DATE = N_("The new due date")
SNOOZE_DATE = N_("The snooze date")
ETA_DATE = N_("The eta")
N_REQUESTS = Np_("{count} request", "{count} requests")
N_BUSINESS_DAYS = Np_("{count} business day", "{count} business days")
N_HOURS = Np_("{count} hour", "{count} hours")
N_BUSINESS_DAYS_LATE = Np_("{count} business day late", "{count} business days late")
N_BYTES = Np_("{count} byte", "{count} bytes")
LIST_TITLE = N_("{case}: {requests} ({scope}) for {office}")
OVERDUE_TITLE = N_("Overdue for {office}: {requests}")
LATE_NOW = Nc_("late", "now")  # "is {late} late" when it fell due today
CHANGE_DUE = N_(" · due now {due}")
CHANGE_SNOOZED = N_(" · nudges held until {until}")
CHANGE_ASSIGNED = N_(" · handled by {assignee}")
CHANGE_ETA = N_(" · answer expected {eta}")
SHOW_HISTORY = N_("{ref} history:")
HISTORY_LINE = N_("- {when} · {action} by {actor}")
CARD_SUMMARY = N_("Summary: {summary}")
CARD_SUMMARY_HIDDEN = N_("(confidential, shown to listed members only)")
CARD_BASIS = N_("Basis: {basis}")
CARD_HANDLED = N_("Handled by: {assignee}")
CARD_ETA = N_("Answer expected: {eta}")
CARD_DUE = N_("due {due}")
CARD_URGENT = N_("URGENT")
CARD_CONFIDENTIAL = N_("confidential")
CARD_UPDATED = N_("{ref} card updated: {status} · due {due}")
CONFIDENTIAL = N_("(confidential)")
WEEKLY_TITLE = N_("Weekly report for {office}:")
WEEKLY_ROW = N_("- with {partner}: {open} open, {overdue} overdue; median time to acknowledge {ack}, to answer {answer}; answered on time {share} ({on_time}/{answered})")
WEEKLY_NONE = N_("- no requests yet")
HOURS_SHORT = N_("{value} h")
DAYS_SHORT = N_("{value} d")
STATS_WITH = N_("with {partner}")
BUSINESS_DAYS_SHORT = N_("{value} bd")
WEEKS_SHORT = N_("{value} w")
#: A command's own text under its thread note, and one history detail.
NOTE_TEXT = N_("{note}:\n{text}")
DETAIL_ITEM = N_("{key}: {value}")

# Matrix: room keys withheld from the bot (``m.room_key.withheld``), by code.
WITHHELD = {
    "m.unverified": N_("I could not read {sender}'s message here because their app only sends "
                    "its keys to sessions they have verified themselves and withheld them from "
                    "mine; please allow unverified sessions for this room in the app's security "
                    "settings, and send it again."),
    "m.blacklisted": N_("I could not read {sender}'s message here because their app has blocked "
                     "my device; please unblock liaisonbot's device in your app's security "
                     "settings and send it again."),
    "m.unauthorised": N_("I could not read {sender}'s message here because their app decided I "
                      "may not have its keys; please check the room's history and sharing "
                      "settings and send it again."),
}

# Matrix: a message in an encrypted room not acted on (unencrypted, or from a device its owner
# has not cross-signed).
UNENCRYPTED_IN_ENCRYPTED_ROOM = N_(
    "I did not act on {sender}'s message because it was sent unencrypted into this encrypted "
    "room; please send it again from an app that encrypts it, on a session you have verified.")
UNTRUSTED_DEVICE = N_(
    "I did not act on {sender}'s message because it came from a session ({device}) they have "
    "not verified; please verify this session (from another of your sessions or with your "
    "recovery key) and send it again.")

# Matrix: a member's cross-signing identity changed (pinned on first use).
IDENTITY_CHANGED = N_(
    "{sender}'s verified identity has changed, so I no longer share this room's messages with "
    "their sessions or act on them; if they reset it themselves, the desk's operator can "
    "accept it with 'liaisonbot matrix trust {user}'.")

# Matrix: the bot's own cross-signing identity (health, check-config --online, reset-identity).
IDENTITY_FOREIGN = N_("The bot's Matrix account already has a cross-signing identity that this "
                    "bot does not hold (master key {master}); set LIAISONBOT_MATRIX_RECOVERY_KEY "
                    "to the account's recovery key, or replace the identity on purpose with "
                    "'liaisonbot matrix reset-identity' (see README, Matrix).")
IDENTITY_WRONG_RECOVERY_KEY = N_("LIAISONBOT_MATRIX_RECOVERY_KEY does not open the account's "
                               "secret storage ({why}); set the recovery key shown when the "
                               "identity was created.")
IDENTITY_NEEDS_PASSWORD = N_("Replacing the bot's cross-signing identity needs the account "
                           "password: set LIAISONBOT_MATRIX_PASSWORD.")
IDENTITY_UPLOAD_FAILED = N_("The homeserver refused the bot's cross-signing keys ({error}).")
IDENTITY_NOT_SIGNED = N_("The bot's device {device} is not signed by its cross-signing identity "
                       "yet; start the bot (it signs its device) and check again.")
IDENTITY_NONE = N_("The bot's Matrix account has no cross-signing identity yet; start the bot "
                 "once and it creates one.")
# ---------------------------------------------------------------------- the case board (web)
BOARD_NO_OFFICE = N_("Your sign-in names no office of this desk, so there is nothing to show.")
BOARD_NOT_FOUND = N_("There is no such page, or your offices are not party to it.")
BOARD_SIGNIN_FAILED = N_("The sign-in could not be completed; start again from the board's address.")
BOARD_ISSUER_DOWN = N_("The sign-in service cannot be reached right now; please try again in a minute.")
BOARD_BAD_CASE = N_("{case!r} is not a case reference like ICC-01/14-01/18.")
BOARD_BAD_LOGOUT = N_("Sign out from the board's own page.")
BOARD_CONFIDENTIAL = N_("(confidential: shown to the listed members of both offices)")
BOARD_PAGE = N_("Requests {first}–{last} of {total}, most urgent first.")
BOARD_CASES_CUT = N_("The {limit} cases with the most overdue and open requests are shown, "
                   "of {total}; the CSV download has them all.")
#: The partners chart (SVG): its title, the bars' tooltips and the two column labels.
BOARD_CHART_TITLE = N_("Open and overdue requests and share answered on time, per partner office")
BOARD_CHART_OPEN = Np_("{count} open", "{count} open")
BOARD_CHART_OVERDUE = Np_("{count} overdue", "{count} overdue")
BOARD_CHART_ON_TIME = N_("on time: {share}")
BOARD_CHART_BARS = N_("open / overdue")
BOARD_CHART_SHARE = N_("share on time")
#: Why a request's audit chain check failed (the board's request page).
BOARD_CHAIN_CHANGED = N_("changed after it was written")
BOARD_CHAIN_NOT_AFTER = N_("does not follow the entry before")
BOARD_CHAIN_NOT_BEFORE = N_("does not follow this one")
BOARD_CHAIN_NO_NEXT = N_("the next entry is missing")

# The console's own remarks (printed after "# ").
CONSOLE_NO_USER = N_("{verb} needs a user, like :as console:alice or :as matrix:@a:example.org.")
CONSOLE_BAD_USER = N_("{arg!r} is not a user like console:alice or matrix:@a:example.org.")
CONSOLE_NO_ROOM = N_(":in needs a room or an office slug, like :in console:icc or :in ba-spo.")
CONSOLE_BAD_ROOM = N_("{arg!r} is neither an office slug nor a room like console:name.")
CONSOLE_BAD_THREAD = N_("{arg!r} is not a request id like R-7; use :thread R-7, or :thread alone "
                      "to leave a thread.")
CONSOLE_NO_THREAD = N_("R-{number} has no thread in {room}.")
CONSOLE_BAD_NOW = N_(":now needs an ISO time like 2026-12-01T09:00+01:00.")
CONSOLE_BAD_ADVANCE = N_(":advance needs a duration like 90m, 6h, 3d or 2w.")
CONSOLE_CLOCK_RANGE = N_("The clock runs from {low} to {high}; {value} is outside.")
CONSOLE_JUMP = N_("The clock moves at most {days} days at a time ({value} is further); "
                "move it in steps.")

# ---------------------------------------------------------------------- points of contact (issue 26)
WHO_UNKNOWN = N_("There is no office {slug!r}; the offices are {known}.")
WHO_TITLE = N_("{office} ({slug})")
WHO_TITLE_COUNTRY = N_("{office} ({slug}), {country}")
WHO_OPEN = N_("Local time {local}: open until {closes}.")
WHO_CLOSED = N_("Local time {local}: closed; opens {opens}.")
WHO_CLOSED_HOLIDAY = N_("Local time {local}: closed (public holiday); opens {opens}.")
WHO_ACCEPTS = N_("Accepts requests in: {languages}.")
WHO_CONTACTS = N_("Points of contact:")
WHO_CONTACT = N_("- {name}, {role}: {reach}; works in {languages}")
WHO_NO_CONTACTS = N_("No points of contact are listed for this office.")
WHO_ON_CALL = N_("On call around the clock: {people}")
WHO_HOLIDAYS = N_("Public holidays in {span}: {dates}")
WHO_NO_HOLIDAYS = N_("No public holidays in {span}.")
WHO_NEXT_DAYS = Np_("the next {count} day", "the next {count} days")
WHO_INSTRUMENTS = N_("Instruments it receives (via:): {instruments}")
WHO_NO_INSTRUMENTS = N_("No instruments are configured here; requests to it go without via:.")
WHO_ALL_TITLE = N_("Offices now (their local time; openings in your time):")
WHO_ALL_OPEN = N_("- {office} ({slug}): {local}, open until {closes}")
WHO_ALL_CLOSED = N_("- {office} ({slug}): {local}, closed; opens {opens}")
WHO_ALL_TAIL = N_("who OFFICE shows its points of contact.")
#: Babel (CLDR) patterns: a day (holidays), and a weekday and time (``who``'s list).
DATE_ONLY = N_("EEE yyyy-MM-dd")
WEEKDAY_TIME = N_("EEE HH:mm")

# ---------------------------------------------------------------------- audit (issue 22)
AUDIT_CHECKPOINT = N_("Audit checkpoint (keep it: `liaisonbot audit verify --checkpoint` "
                      "proves against it that the shared history was not rewritten): {word}")

# ---------------------------------------------------------------------- deadlines from events (issue 23)
STATUS_VERB.update({"record": N_("recorded")})
CARD_CLOCKS_EVENTS = N_("{instrument} · ack within {ack}{ack_cite} · {deadlines}")
CARD_CLOCKS_EVENTS_ACK_BY = N_("{instrument} · ack by {ack} (never after the answer) · {deadlines}")
DEADLINE_BY = N_("{name} by {date}{cite}")
DEADLINE_EXTENDED = N_("{name} by {date} (extended from {legal}{cite})")
DEADLINE_WAITING = N_("{name} {within} after the {event}{cite}")
DEADLINE_LATE_NOTICE = N_("Late: {notice}")
CARD_ANNEX_B = N_("Received {received}; their reference: {ref}; contact: {contact}")
EVENT_LATER_THAN_NOW = N_("{what} {value} is after now; give when it really happened.")
EVENT_TOO_LONG_AGO = N_("{what} {value} is more than {years} years ago; give when it really "
                        "happened.")
EVENT_RECORDED = N_("{event}: {date}")
SCOPE_REFUSED = N_("{instrument} works only between EU Member States bound by it ({source}); {office} is not in one.")
EXTEND_BEYOND = N_("The {name} deadline of {ref} may be extended by {limit} at most ({cite}): the latest is {latest}.")
EXTEND_NOT_ALLOWED = N_("The {name} deadline of {ref} cannot be moved by {office} alone ({cite}); inform the issuing office and agree the timing.")
EXTENDED_WHY = N_("{name} deadline extended to {date}, within the {limit} the instrument allows ({cite}); the reasons are given to the other office")
RECORD_UNKNOWN_EVENT = N_("{instrument} counts no deadline from {event}; its events: {events}.")
EVENT_NAMES = {"opened": N_("opening"), "received": N_("receipt"), "decision": N_("decision"),
               "arrest": N_("arrest"), "consent": N_("consent"),
               "surrender-decision": N_("surrender decision")}
DEADLINE_NAMES = {"decision": N_("decision"), "execution": N_("execution"),
                  "surrender": N_("surrender"), "production": N_("production"),
                  "emergency": N_("emergency production"), "recognition": N_("recognition"),
                  "consent": N_("decision after consent"), "provisional": N_("provisional measures")}

# ---------------------------------------------------------------------- measures (issue 24)
STATUS_NAMES.update({"partly_answered": N_("partly answered")})
STATUS_VERB.update({"postpone": N_("postponed")})
#: A measure's state (``domain.measures.MeasureState``), as cards and replies write it.
MEASURE_STATES = {"pending": N_("pending"), "answered": N_("answered"),
                  "declined": N_("declined"), "postponed": N_("postponed")}
HISTORY_ACTIONS.update({"measure answered": N_("measure answered"),
                        "measure declined": N_("measure declined"),
                        "measure postponed": N_("measure postponed")})
DETAIL_KEYS.update({"measure_no": N_("measure"), "measure_state": N_("measure state"),
                    "measures": N_("measures"), "measures_settled": N_("measures settled"),
                    "conditions": N_("conditions on use"),
                    "chasing_until": N_("chasing waits until")})
#: One measure on a card: ``R-4/2 Bank records: answered``.
CARD_MEASURE_ROW = N_("{ref}/{number} {text}: {state}")
CARD_MEASURE_POSTPONED = N_("{ref}/{number} {text}: postponed until {until} ({reason})")
CARD_CONDITIONS = N_("Conditions on use: {conditions}")
#: The measures' tally on a card and in lists.
CARD_MEASURES = N_("Measures: {answered} answered, {declined} declined, {postponed} postponed, {pending} pending")
LIST_MEASURES = N_("{settled}/{count} measures settled")
MEASURE_DONE = N_("{ref}/{number} is {state}; {ref} is {status} now.")
MEASURE_POSTPONED_DONE = N_("{ref}/{number} is postponed until {until}; {ref} is {status}.")
CHANGE_MEASURE_UNTIL = N_(" · until {until}")
POSTPONE_DATE = N_("The postponement date")
WEEKLY_PARTLY = Np_("{count} request partly answered (some measures settled, others still owed).",
                    "{count} requests partly answered (some measures settled, others still owed).")
STATS_PARTIAL = N_("- partial execution: {partial} of {total} requests with measures")

# ---------------------------------------------------------------------- confidential by default, every word translated (issue 24)
CONF_BY_DEFAULT = N_("Requests via {instrument} are confidential unless conf: says otherwise{cite}.")
CONF_LOWER_REFUSED = N_("Requests via {instrument} are confidential{cite}; only a listed member of {office} may open one as {level}.")
HELP_OPEN_CONF = N_("conf:LEVEL is restricted or confidential; a request via an instrument that makes it confidential (via:icc) is confidential unless conf: says otherwise, and only the requesting office's listed members may lower it. A confidential request needs listed members in both offices.")
CONF_NOBODY = N_("{office} ({slug}) lists no members, so nobody there could read a confidential request; it was not opened (the desk's operator can list its members).")
#: Request kinds and confidentiality levels as readers see them; the words typed after
#: ``kind:`` and ``conf:`` stay as written (command words).
KIND_NAMES = {"mla": Nc_("kind", "mla"), "evidence": Nc_("kind", "evidence"),
              "information": Nc_("kind", "information"), "witness": Nc_("kind", "witness"),
              "surrender": Nc_("kind", "surrender"), "assets": Nc_("kind", "assets"),
              "other": Nc_("kind", "other")}
LEVEL_NAMES = {"restricted": Nc_("level", "restricted"),
               "confidential": Nc_("level", "confidential")}
#: Instrument labels (``short``) and sources are the deployment's words: the catalogs translate
#: them by their English text under the contexts "instrument" and "instrument source", and a
#: label or source no catalog knows (a deployment's own instrument) is shown as configured.
#: These are the example config's.
INSTRUMENT_LABELS = (
    Nc_("instrument", "EIO"), Nc_("instrument", "EAW"), Nc_("instrument", "Freezing"),
    Nc_("instrument", "Confiscation"), Nc_("instrument", "EPOC"),
    Nc_("instrument", "ICC Part 9"), Nc_("instrument", "MLA"), Nc_("instrument", "Informal"))
INSTRUMENT_SOURCES = (
    Nc_("instrument source", "Directive 2014/41/EU, arts. 12, 16 and 32"),
    Nc_("instrument source", "Framework Decision 2002/584/JHA, arts. 17 and 23"),
    Nc_("instrument source", "Regulation (EU) 2018/1805, art. 9"),
    Nc_("instrument source", "Regulation (EU) 2018/1805, art. 20"),
    Nc_("instrument source", "Regulation (EU) 2023/1543, art. 10"),
    Nc_("instrument source", "Rome Statute arts. 86-102; art. 87(3): kept confidential; art. 93: forms of assistance; art. 97: consult the Court without delay when a request cannot be executed"),
    Nc_("instrument source", "the applicable MLA treaty; classic MLA treaties set no fixed deadline"),
    Nc_("instrument source", "police-to-police or prosecutor-to-prosecutor practice; the deadline is what the offices agree (set it with due:)"))


def instrument_label(label: str) -> tuple[str, str]:
    """An instrument's label as a word the reader's catalog translates (or shows as is)."""
    return "instrument", label


def instrument_source(source: str) -> tuple[str, str]:
    """An instrument's source (the legal text it cites), translated the same way."""
    return "instrument source", source

# ---------------------------------------------------------------------- request shape (issue 24): several offices, postpone/consult/resume, forward
STATUS_VERB.update({"postpone": N_("postponed"), "consult": N_("put to consultation"),
                    "resume": N_("resumed"), "forward": N_("forwarded")})
STATUS_NAMES.update({"postponed": N_("postponed"), "consulting": N_("consulting")})
DETAIL_KEYS.update({"parallel": N_("parallel requests"), "from": N_("from")})
OPENED_PARALLEL = N_("{refs} opened in parallel: {case}, one request to each of {offices}.")
PARALLEL_ITEM = N_("{ref} to {office} ({status})")
SHOW_PARALLEL = N_("Parallel requests in {case}: {requests}")
LIST_PARALLEL = N_("Opened in parallel: {refs}")
CHANGE_POSTPONED = N_(" · postponed until {until}; not chased meanwhile, the legal deadlines stand")
CHANGE_POSTPONED_STOPS = N_(" · postponed until {until}; not chased meanwhile; the {deadlines} time does not run while postponed ({cite}), the other legal deadlines stand")
CHANGE_CONSULTING = N_(" · execution waits for the consultation; not chased meanwhile")
CHANGE_BACK_TO = N_(" · back to {status}; chased again as before")
CHANGE_FORWARDED = N_(" · forwarded to {office}, which now handles it")
CARD_POSTPONED = N_("Postponed until {until}: {reason}")
CARD_CONSULTING = N_("In consultation since {since}: {reason}")
POSTPONEMENT_ENDED = N_("{ref}: the postponement ended {until}; it is {status} again and chased as before.")
FORWARDED_HERE = N_("{ref} forwarded to {office} by {former}: {case}, {kind} from {requesting}, due {due}.")
FORWARD_CONF_NO_MEMBERS = N_("{ref} is confidential and {office} lists no members who could read it, so it cannot be forwarded there.")
FORWARD_SAME = N_("{ref} is already with {office}.")
FORWARD_TO_REQUESTING = N_("{office} issued {ref}; forward it to the office competent to execute it.")
FORWARDED_AWAY = N_("{ref} was forwarded to {office} on {at}; {former} may still read what it saw until then (show {ref}) but no longer acts on it.")
SHOW_FORMER = N_("{ref} as it stood when {former} forwarded it to {office} on {at} (what followed is not shown to {former}):")
LIST_FORWARDED = N_("Forwarded to other offices (read only): {requests}")
LIST_HELD = Np_("{count} postponed or in consultation (not chased).",
                "{count} postponed or in consultation (not chased).")
HELP_LAW = {
    "postpone": N_("Postpones execution until UNTIL (a date, Nd, Nbd or Nw): EIO Directive 2014/41/EU art. 15; Rome Statute arts. 94 and 95. The other office is told the reason; the request is not chased until then, when it resumes by itself; the legal deadlines are not moved."),
    "consult": N_("Asks the other office to consult before execution goes on: EIO Directive 2014/41/EU art. 6(3); Rome Statute arts. 93(3) and 97. The request is not chased until resume; the legal deadlines are not moved."),
    "resume": N_("Ends a postponement or a consultation: the request is back where it was and chased again."),
    "forward": N_("Passes the request to the office competent to execute it (EIO Directive 2014/41/EU art. 7(6)); the issuing office is told why and to whom. Your office keeps read access to what it saw and no longer acts on it."),
    "open": N_("Several offices after to: (to:de-gba,nl-om) open one parallel request to each, all or none; each office sees only its own."),
}
