"""Block Kit rendering: escaping, limits, buttons, forms."""

from __future__ import annotations

import json

import pytest

from liaisonbot.chat.slack import forms
from liaisonbot.chat.slack.blocks import MAX_BLOCKS, SECTION_MAX, escape, render
from liaisonbot.chat.slack.platform import FormSafeRequest
from liaisonbot.domain.cards import Card, Post

CARD = Card(request_id=7, case="ICC-1", kind="mla", requesting="icc", requesting_name="ICC",
            requested="spo", requested_name="SPO <b>", status="open",
            due_at="2030-01-01T12:00:00+00:00", summary="x" * 10_000 + " <!here>")


def test_escape_defuses_pings_mentions_and_links() -> None:
    assert escape("<!channel> <@U1> <http://a|b> & &amp;") == \
        "&lt;!channel&gt; &lt;@U1&gt; &lt;http://a|b&gt; &amp; &amp;amp;"


def test_long_card_is_cut_with_a_pointer_to_show() -> None:
    post = Post(kind="card", text="R-7 opened", card=CARD, request_id=7,
                as_of="2029-12-01T00:00:00+00:00")
    text, blocks = render(post, side="requested", team="T1")
    assert len(blocks) <= MAX_BLOCKS and len(text) <= 4000
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(s) <= SECTION_MAX for s in sections)
    assert any("show R-7" in s for s in sections)
    assert "<b>" not in json.dumps(blocks) and "<!here>" not in text
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["lb_ack", "lb_answer", "lb_extend",
                                                           "lb_incomplete"]


def test_long_list_stays_within_fifty_blocks_and_13k() -> None:
    post = Post(kind="list", text="many", cards=tuple(CARD for _ in range(80)))
    _, blocks = render(post, side=None, team=None)
    assert len(blocks) <= MAX_BLOCKS
    assert sum(len(b["text"]["text"]) for b in blocks) <= 12_000


def test_mentions_only_for_this_workspace() -> None:
    post = Post(kind="nudge", text="late", mentions=("slack:T1/U1", "slack:T2/U2", "slack:U3"))
    _, blocks = render(post, side=None, team="T1")
    assert "<@U1>" in json.dumps(blocks) and "<@U3>" in json.dumps(blocks)
    assert "<@U2>" not in json.dumps(blocks)


def test_form_submissions_build_commands() -> None:
    origin = forms.Origin("T1", "C1", "1.2", "extend", "R-7")
    assert forms.action_command(origin, {"new_due": " 2030-02-01 ", "reason": "more\ntime"}) == \
        "extend R-7 2030-02-01 more time"
    assert forms.open_command({"case": "OP 1", "to": "spo", "kind": "mla", "due": "",
                               "urgent": "urgent", "summary": "a\nb"}) == \
        "open OP1 to:spo kind:mla urgent a b"


def test_form_body_with_the_word_payload_is_parsed_as_fields() -> None:
    body = "command=%2Fliaison&text=show+payload&team_id=T1"
    form = {"content-type": "application/x-www-form-urlencoded"}
    request = FormSafeRequest(body=body, headers=form)
    assert request.body["text"] == "show payload"
    assert request.to_copyable().body["text"] == "show payload"
    real = FormSafeRequest(body="payload=%7B%22type%22%3A%22block_actions%22%7D", headers={})
    assert real.body == {"type": "block_actions"}


@pytest.mark.parametrize(("conditions", "expected"), [
    ("for use in OP-1 only", "for use in OP-1 only"),
    ('not for the "defence" file', 'not for the "defence" file'),  # in curly quotes
    ('„kind“ and "this"', '„kind“ and ”this”'),  # every pair occurs: straight made curly
    ('mixed “quotes” and "straight"', 'mixed “quotes” and ”straight”')])
def test_answer_form_conditions_reach_the_command(conditions: str, expected: str) -> None:
    """The Answer form's optional conditions on use become ``conditions:"…"``, which the
    grammar reads back as typed (quotes inside kept, or a straight one made curly when every
    quote pair occurs)."""
    from liaisonbot.domain.grammar import parse
    origin = forms.Origin("T1", "C1", "1.2", "answer", "R-7")
    view = forms.action_view(origin)
    assert [b["block_id"] for b in view["blocks"]] == ["text", "conditions"]
    assert view["blocks"][1]["optional"] is True
    command = forms.action_command(origin, {"text": "Records\nattached", "conditions": conditions})
    parsed = parse(command)
    assert (parsed.request_id, parsed.text) == (7, "Records attached")  # type: ignore[union-attr]
    assert parsed.conditions == expected  # type: ignore[union-attr]
    assert forms.action_command(origin, {"text": "done", "conditions": " "}) == "answer R-7 done"
