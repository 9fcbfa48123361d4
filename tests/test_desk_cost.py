"""The desk's hot path made cheaper without changing what it does (issue 16): the outbox
JSON of a post, the plain-word tokenizer, the directory's lookups."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import make_settings
from liaisonbot.domain import grammar
from liaisonbot.domain.cards import Card, Post


def _card(n: int, **kw: Any) -> Card:
    return Card(request_id=n, case="ICC-01/14", kind="mla", requesting="icc-otp",
                requesting_name="ICC «OTP»", requested="ba-spo", requested_name="Сараєво",
                status="open", due_at="2026-12-30T16:30:00+00:00", **kw)


@pytest.mark.parametrize("post", [
    Post(kind="reply", text="R-1 done"),
    Post(kind="card", text="Opened\nline 2", tz="Europe/Kyiv", as_of="2026-12-02T12:00:00",
         locale="uk", card=_card(1, summary="Bank records ✓", eta=None), request_id=1,
         mentions=("slack:U1", "matrix:@a:b"), extra={"skip": True, "n": [1, {"a": None}]}),
    Post(kind="list", text="Title", cards=(_card(1), _card(2, urgent=True, days_late=3)),
         author="alice · icc-otp", source_ref="slack:C1#1.2", in_thread=True),
])
def test_post_json_is_what_asdict_gave(post: Post) -> None:
    old = json.dumps(asdict(post), ensure_ascii=False, separators=(",", ":"))
    assert post.to_json() == old
    assert Post.from_json(post.to_json()) == post


def _slow_tokens(text: str) -> list[grammar.Token]:
    """The character loop alone (the path a text with quotes takes)."""
    saved = grammar._QUOTES
    grammar._QUOTES = {**saved, "\x00": "\x00"}  # a quote char in every text: no fast path
    try:
        return grammar.tokenize(text + " \x00\x00")[:-1]  # less the empty quoted token
    finally:
        grammar._QUOTES = saved


@given(st.text(alphabet=st.sampled_from("ab:-R1 \t\n\u00a0\u2003\u3000é"), max_size=40))
def test_plain_words_split_as_the_character_loop_does(text: str) -> None:
    fast = grammar.tokenize(text)
    assert fast == [grammar.Token(t.text) for t in _slow_tokens(text)]


def test_the_directory_remembers_rooms_and_still_answers_for_any_room() -> None:
    directory = make_settings("sqlite+aiosqlite:///:memory:").directory
    first = directory.offices[0]
    room = first.rooms[0]
    for n in range(5000):  # past the memo's bound: it is dropped, answers stay right
        assert directory.office_for_room(f"console:nobody-{n}") is None
        assert directory.office_for_room(room) is first
    assert directory.office(first.slug) is first and directory.office("nope") is None
