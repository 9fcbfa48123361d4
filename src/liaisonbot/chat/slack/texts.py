"""Every sentence the Slack adapter itself says (the desk's own sentences live in the service)."""

# ruff: noqa: E501 (one sentence per line)
from __future__ import annotations

from liaisonbot.service.messages import N_

# The English text is the gettext msgid (service.i18n translates it for the reader).

DUPLICATE_COMMAND = N_("I already have this command from you a moment ago; nothing was done twice.")
WORKING = N_("Working on it…")
CUT = N_("… (cut here; `show {ref}` gives the full text)")
NOT_CONFIGURED_TEAM = N_("This workspace is not set up for liaisonbot.")
OPEN_TITLE = N_("Open a request")
SUBMIT = N_("Submit")
CANCEL = N_("Cancel")
BUTTONS = {"ack": N_("Acknowledge"), "answer": N_("Answer"), "extend": N_("Extend"),
           "close": N_("Close"), "reopen": N_("Reopen"), "withdraw": N_("Withdraw"),
           "incomplete": N_("Incomplete"), "complete": N_("Complete"), "resume": N_("Resume")}
FORM_TITLES = {"answer": N_("Answer {ref}"), "extend": N_("Extend {ref}"), "reopen": N_("Reopen {ref}"),
               "incomplete": N_("Incomplete {ref}"), "complete": N_("Complete {ref}")}
FIELD_LABELS = {"case": N_("Case"), "to": N_("To office (slug)"), "kind": N_("Kind"), "due": N_("Due (optional)"),
                "urgent": N_("Urgent"), "summary": N_("Summary"), "text": N_("Answer"),
                "reason": N_("Reason"), "new_due": N_("New due date (YYYY-MM-DD, Nd, Nbd, Nw)"),
                "missing": N_("What is missing"), "supplied": N_("What was missing"),
                "conditions": N_("Conditions on use (optional)")}
FIELD_HINTS = {"due": N_("YYYY-MM-DD, 10d, 5bd or 2w; empty for the policy default")}
CONFIDENTIAL = N_("(confidential, shown to listed members only)")
