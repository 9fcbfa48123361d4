"""Matrix content from neutral posts, and inbound classification: no server needed."""

from __future__ import annotations

from liaisonbot.chat.matrix.html import message_content
from liaisonbot.chat.matrix.inbound import classify
from liaisonbot.domain.cards import Post

ME = "@bot:example.org"


def _classify(body: str, sender: str = "@a:example.org", **content: object) -> object:
    return classify(sender=sender, event_type="m.room.message",
                    content={"msgtype": "m.text", "body": body, **content}, own_user=ME,
                    allowed_servers=("example.org",))


def test_mentions_only_matrix_users_and_never_room() -> None:
    post = Post(kind="note", text="Escalated @room <i>x</i>",
                mentions=("matrix:@head:example.org", "slack:U123"))
    content = message_content(post, delivery_id="lb-1", thread_root="$root")
    assert content["m.mentions"] == {"user_ids": ["@head:example.org"]}
    assert "@room" not in content["body"] and "&lt;i&gt;" in content["formatted_body"]
    assert content["m.relates_to"]["rel_type"] == "m.thread"
    assert content["m.relates_to"]["m.in_reply_to"] == {"event_id": "$root"}
    assert content["org.liaisonbot.delivery"] == "lb-1"


def test_edit_has_new_content() -> None:
    content = message_content(Post(kind="reply", text="hi"), delivery_id="lb-2", edit_of="$c")
    assert content["m.relates_to"] == {"rel_type": "m.replace", "event_id": "$c"}
    assert content["m.new_content"]["body"] == "hi"


def test_classify() -> None:
    assert _classify("!liaison help").kind == "command"  # type: ignore[attr-defined]
    assert _classify("!liaisonbot help") is None
    assert _classify("hello") is None
    relay = _classify("hello", **{"m.relates_to": {"rel_type": "m.thread", "event_id": "$r"}})
    assert relay.kind == "relay" and relay.thread_root == "$r"  # type: ignore[attr-defined]
    assert _classify("!liaison help", sender="@x:other.org") is None
    assert _classify("!liaison help", sender=ME) is None
    assert classify(sender="@a:example.org", event_type="m.room.message",
                    content={"msgtype": "m.notice", "body": "!liaison help"}, own_user=ME,
                    allowed_servers=()) is None


def test_rate_limit_becomes_retry_after() -> None:
    from nio import RoomSendError

    from liaisonbot.chat.matrix.gateway import error_of

    resp = RoomSendError("slow down", "M_LIMIT_EXCEEDED", retry_after_ms=2500)
    error = error_of(resp, "send")
    assert error.retry_after == 2.5 and not error.permanent
    assert error_of(RoomSendError("no", "M_FORBIDDEN"), "send").permanent
