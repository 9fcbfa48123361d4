"""Adapters translate, the domain decides: card buttons and Slack dedupe come from RULES, the
Matrix invite decision is the directory's, and one ``clean``/``defuse`` serves every target."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from conftest import make_settings
from liaisonbot.chat.matrix.html import message_content
from liaisonbot.chat.slack.blocks import card_buttons, escape, render
from liaisonbot.chat.slack.listeners import BUTTON
from liaisonbot.domain.cards import Card, Post
from liaisonbot.domain.grammar import VERBS
from liaisonbot.domain.model import RULES, Side, Status, card_actions, changes_state

CARD = Card(request_id=7, case="ICC-1", kind="mla", requesting="icc", requesting_name="ICC",
            requested="spo", requested_name="SPO", status="open",
            due_at="2030-01-01T12:00:00+00:00", summary="pay to moc.evil\u202e\u2066 now")
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b")


@pytest.mark.parametrize("side, status, buttons", [
    (Side.REQUESTED, Status.OPEN, ["ack", "answer", "extend", "incomplete"]),
    (Side.REQUESTED, Status.ACKNOWLEDGED, ["answer", "extend", "incomplete"]),  # no re-ack
    (Side.REQUESTED, Status.ANSWERED, []),
    (Side.REQUESTED, Status.INCOMPLETE, []),
    (Side.REQUESTING, Status.OPEN, ["withdraw"]),
    (Side.REQUESTING, Status.ACKNOWLEDGED, ["withdraw"]),
    (Side.REQUESTING, Status.INCOMPLETE, ["complete", "withdraw"]),
    (Side.REQUESTING, Status.ANSWERED, ["close", "reopen"]),
    (Side.REQUESTING, Status.CLOSED, []),
    (Side.REQUESTED, Status.DECLINED, []),
    # issue 24: a held request offers its requested side Resume, its requesting side Withdraw
    (Side.REQUESTED, Status.POSTPONED, ["resume"]),
    (Side.REQUESTED, Status.CONSULTING, ["resume"]),
    (Side.REQUESTING, Status.POSTPONED, ["withdraw"]),
])
def test_card_buttons_follow_the_rules(side: Side, status: Status, buttons: list[str]) -> None:
    assert card_actions(side, status) == buttons
    shown = card_buttons(replace(CARD, status=status.value), side.value)
    assert [b["action_id"] for b in shown] == [f"lb_{verb}" for verb in buttons]
    for verb in buttons:  # never a button the desk would refuse
        assert side in RULES[verb].sides and status in RULES[verb].from_statuses
        assert BUTTON.match(f"lb_{verb}")


def test_dedupe_covers_exactly_the_verbs_that_change_the_record() -> None:
    assert {v for v in VERBS if changes_state(v)} == {"open", *RULES}
    assert not any(changes_state(v) for v in ("", "help", "list", "overdue", "show"))


def test_matrix_invites_are_decided_by_the_directory(sqlite_url: str) -> None:
    offices = [{"slug": "icc-otp", "name": "ICC OTP", "timezone": "UTC",
                "rooms": ["matrix:!bound:icc.example"], "members": ["matrix:@alice:icc.example"]},
               {"slug": "ba-spo", "name": "BA SPO", "timezone": "UTC",
                "rooms": ["console:ba"]}]
    directory = make_settings(sqlite_url, offices=offices).directory
    assert directory.accepts_invite("matrix:!bound:icc.example", "matrix:@eve:evil.example")
    assert directory.accepts_invite("matrix:!other:x", "matrix:@alice:icc.example")
    assert not directory.accepts_invite("matrix:!other:x", "matrix:@eve:evil.example")
    assert not directory.accepts_invite("matrix:!other:x", "")


def test_no_bidi_control_survives_into_slack_cards_or_matrix_html() -> None:
    assert escape("a\u202eb <!here>") == "ab &lt;!here&gt;"
    post = Post(kind="card", text="R-7 opened \u202e", card=CARD, request_id=7,
                as_of="2029-12-01T00:00:00+00:00")
    text, blocks = render(post, side="requested", team="T1")
    assert not BIDI & set(text + json.dumps(blocks, ensure_ascii=False))
    content = message_content(post, delivery_id="lb-1")
    assert not BIDI & set(content["body"] + content["formatted_body"])
