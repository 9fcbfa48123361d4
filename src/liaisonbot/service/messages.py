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

# ---------------------------------------------------------------------- legal clocks (issue 13)
STATUS_VERB.update({"incomplete": "marked incomplete", "complete": "completed"})
UNKNOWN_INSTRUMENT = "There is no instrument {slug!r}. Instruments: {known}."
NO_INSTRUMENTS = "No instruments are configured here, so via:{slug} cannot be used; open the request without via:."
MISSING_FIELDS = "A request via {instrument} must carry {fields} ({source}); add it and open again."
CARD_CLOCKS = "{instrument} · ack within {ack}{ack_cite} · answer by {due} · legal time {legal}{due_cite}"
CARD_NO_DEADLINE = "{instrument} · no legal deadline ({source}) · answer by {due}"
CARD_MISSING = "Missing: {missing} (waiting for {office} to complete it)"
CARD_WAITING = "waiting for {office}"
CARD_PERSON = "Person concerned: {person}"
CARD_MEASURE = "Measure: {measure}"
CHANGE_PAUSED = " · clocks stopped until {office} completes it"
CHANGE_RESUMED = " · clocks resume, due now {due} (moved by {days})"
NUDGE_INCOMPLETE = "Reminder {number}: {ref} ({case}, {kind} to {requested}) is incomplete since {since}; {requested} is waiting for: {missing}. Please complete {ref} TEXT."
NUDGE_ETA = "Reminder: you expected to answer {ref} ({case}, {kind} from {requesting}) by {eta}. Please answer {ref}, or give a new date with ack {ref} eta:DATE."
LIST_INCOMPLETE = "{count} incomplete (clocks stopped, waiting for completion)."
STATS_TITLE = "Legal clocks (time spent incomplete not counted):"
STATS_ROW = "- {group}: acknowledged in {ack} (p90 {ack90}), answered in {answer} (p90 {answer90}); within the legal time {share}; incomplete {paused} over {paused_n}"
STATS_NONE = "- no requests yet"

# Matrix: room keys withheld from the bot (``m.room_key.withheld``), by code.
WITHHELD = {
    "m.unverified": "I could not read {sender}'s message here because their app only sends "
                    "its keys to sessions they have verified themselves and withheld them from "
                    "mine; please allow unverified sessions for this room in the app's security "
                    "settings, and send it again.",
    "m.blacklisted": "I could not read {sender}'s message here because their app has blocked "
                     "my device; please unblock liaisonbot's device in your app's security "
                     "settings and send it again.",
    "m.unauthorised": "I could not read {sender}'s message here because their app decided I "
                      "may not have its keys; please check the room's history and sharing "
                      "settings and send it again.",
}

# Matrix: the bot's own cross-signing identity (health, check-config --online, reset-identity).
IDENTITY_FOREIGN = ("The bot's Matrix account already has a cross-signing identity that this "
                    "bot does not hold (master key {master}); set LIAISONBOT_MATRIX_RECOVERY_KEY "
                    "to the account's recovery key, or replace the identity on purpose with "
                    "'liaisonbot matrix reset-identity' (see README, Matrix).")
IDENTITY_WRONG_RECOVERY_KEY = ("LIAISONBOT_MATRIX_RECOVERY_KEY does not open the account's "
                               "secret storage ({why}); set the recovery key shown when the "
                               "identity was created.")
IDENTITY_NEEDS_PASSWORD = ("Replacing the bot's cross-signing identity needs the account "
                           "password: set LIAISONBOT_MATRIX_PASSWORD.")
IDENTITY_UPLOAD_FAILED = "The homeserver refused the bot's cross-signing keys ({error})."
IDENTITY_NOT_SIGNED = ("The bot's device {device} is not signed by its cross-signing identity "
                       "yet; start the bot (it signs its device) and check again.")
IDENTITY_NONE = ("The bot's Matrix account has no cross-signing identity yet; start the bot "
                 "once and it creates one.")
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
