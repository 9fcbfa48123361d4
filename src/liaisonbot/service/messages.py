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

# ---------------------------------------------------------------------- the case board (web)
BOARD_NO_OFFICE = "Your sign-in names no office of this desk, so there is nothing to show."
BOARD_NOT_FOUND = "There is no such page, or your offices are not party to it."
BOARD_SIGNIN_FAILED = "The sign-in could not be completed; start again from the board's address."
BOARD_ISSUER_DOWN = "The sign-in service cannot be reached right now; please try again in a minute."
BOARD_BAD_CASE = "{case!r} is not a case reference like ICC-01/14-01/18."
BOARD_BAD_LOGOUT = "Sign out from the board's own page."
BOARD_CONFIDENTIAL = "(confidential: shown to the listed members of both offices)"
BOARD_PAGE = "Requests {first:,}–{last:,} of {total:,}, most urgent first."
BOARD_CASES_CUT = ("The {limit:,} cases with the most overdue and open requests are shown, "
                   "of {total:,}; the CSV download has them all.")
