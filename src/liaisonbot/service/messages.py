"""Every sentence the bot says, in one place (wording, and later translation, live here)."""

from __future__ import annotations

from liaisonbot.domain.grammar import USAGE, VERBS

STATUS_VERB = {"ack": "acknowledged", "answer": "answered", "close": "closed",
               "reopen": "reopened", "decline": "declined", "withdraw": "withdrawn",
               "extend": "extended", "assign": "assigned", "snooze": "snoozed"}

NOT_BOUND = "This room is not bound to any office, so only help works here."
CHANGED_MEANWHILE = "{ref} changed meanwhile (someone else acted on it first); look at it with show {ref} and try again."
INTERNAL_ERROR = "Something went wrong on my side and nothing was changed; please try again."
UNDECRYPTABLE = "I could not read a message here (it was encrypted with keys I do not have); please send it again."
UNKNOWN_OFFICE = "There is no office {slug!r}. Offices: {known}."
SAME_OFFICE = "A request goes to another office; {slug} is your own."
NOT_PARTY = "{ref} does not exist or {office} is not party to it."
NOT_MEMBER = "Only the listed members of {office} act for it; ask one of them."
WRONG_SIDE = "Only the {side} office ({office}) can {verb} {ref}."
WRONG_STATUS = "{ref} is {status}, so it cannot be {done} now."
PAST_DATE = "{what} {value} is already past; give a later date."
TOO_FAR = "{what} {value} is too far ahead; give one within {years} years."
NOTHING_OPEN = "No {scope} requests in {case} that {office} is party to."
NOTHING_OVERDUE = "Nothing overdue for {office}."
OPENED = "{ref} opened: {case}, {kind} from {requesting} to {requested}, due {due}."
CONF_OPENED = "The summary is shown only to the listed members of both offices, by direct message."
CONF_NO_MEMBERS = "No members are listed for {office}, so the summary stays in the record only."
DONE = "{ref} is {status} now."
DONE_FIELD = "{ref}: {what}."
NOTE_BY = "{ref} {done} by {who} ({office})"
CONF_TEXT_IN_DM = "(text sent to the listed members by direct message)"
RELAYED_FILE = "{who} shared a file in {ref}: {name} ({size}). Files are not copied across; ask {office} to send it through your secure channel."
SHOW_DM = "{ref} (confidential) in full, as you are a listed member of {office}:"
HELP_HEADER = "liaisonbot commands (type them after !liaison or /liaison):"
HELP_TAIL = "Dates: YYYY-MM-DD, Nd, Nbd (business days) or Nw. help COMMAND shows one."


def help_text(topic: str | None) -> str:
    if topic:
        return f"Usage: {USAGE[topic]}"
    return "\n".join([HELP_HEADER, *(f"  {USAGE[v]}" for v in VERBS), HELP_TAIL])


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"

NUDGE_ACK = "Reminder: {ref} ({case}, {kind} from {requesting}) has not been acknowledged; it was due for acknowledgement {ack_due}. Please ack {ref} [eta:DATE]."
NUDGE_ANSWER = "Reminder {number}: {ref} ({case}, {kind} from {requesting}) was due {due} and is {late} late. Please answer {ref}, or extend it with a reason."
NUDGE_MERGED = "({merged} reminders fell due while the desk was offline; this is one notice.)"
NUDGE_ESCALATE = "Escalated to {people}."
NUDGE_NOTE = "Reminder {number} sent to {requested} for {ref}."
DIGEST_TITLE = "Morning digest for {office}: {overdue} overdue, {soon} due within two business days."
DIGEST_CASE = "Case {case}:"
RELAY_EDITED = "{who} (edited): {text}"
RELAY_DELETED = "{who} deleted a relayed message."

# The console's own remarks (printed after "# ").
CONSOLE_NO_USER = "{verb} needs a user, like :as console:alice or :as matrix:@a:example.org."
CONSOLE_BAD_USER = "{arg!r} is not a user like console:alice or matrix:@a:example.org."
CONSOLE_NO_ROOM = ":in needs a room or an office slug, like :in console:icc or :in ba-spo."
CONSOLE_BAD_ROOM = "{arg!r} is neither an office slug nor a room like console:name."
CONSOLE_BAD_THREAD = ("{arg!r} is not a request id like R-7; use :thread R-7, or :thread alone "
                      "to leave a thread.")
CONSOLE_NO_THREAD = "R-{number} has no thread in {room}."
CONSOLE_BAD_NOW = ":now needs an ISO time like 2026-12-01T09:00+01:00."
CONSOLE_BAD_ADVANCE = ":advance needs a duration like 90m, 6h, 3d or 2w."
CONSOLE_CLOCK_RANGE = "The clock runs from {low} to {high}; {value} is outside."
CONSOLE_JUMP = ("The clock moves at most {days} days at a time ({value} is further); "
                "move it in steps.")
