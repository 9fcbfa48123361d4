"""Every sentence the Slack adapter itself says (the desk's own sentences live in the service)."""

from __future__ import annotations

DUPLICATE_COMMAND = "I already have this command from you a moment ago; nothing was done twice."
WORKING = "Working on it…"
CUT = "… (cut here; `show {ref}` gives the full text)"
NOT_CONFIGURED_TEAM = "This workspace is not set up for liaisonbot."
OPEN_TITLE = "Open a request"
SUBMIT = "Submit"
CANCEL = "Cancel"
BUTTONS = {"ack": "Acknowledge", "answer": "Answer", "extend": "Extend",
           "close": "Close", "reopen": "Reopen", "withdraw": "Withdraw",
           "incomplete": "Incomplete", "complete": "Complete"}
FORM_TITLES = {"answer": "Answer {ref}", "extend": "Extend {ref}", "reopen": "Reopen {ref}",
               "incomplete": "Incomplete {ref}", "complete": "Complete {ref}"}
FIELD_LABELS = {"case": "Case", "to": "To office (slug)", "kind": "Kind", "due": "Due (optional)",
                "urgent": "Urgent", "summary": "Summary", "text": "Answer",
                "reason": "Reason", "new_due": "New due date (YYYY-MM-DD, Nd, Nbd, Nw)",
                "missing": "What is missing", "supplied": "What was missing"}
FIELD_HINTS = {"due": "YYYY-MM-DD, 10d, 5bd or 2w; empty for the policy default"}
CONFIDENTIAL = "(confidential, shown to listed members only)"
