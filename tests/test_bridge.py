
"""One desk across platforms: ICC OTP on Slack (FakeSlack) and BA SPO on Matrix (a real
Synapse), one core. Requests both ways through their lifecycle, thread relay with formatting,
edits and deletions both ways, file notices, loop safety, and a restart mid-relay."""

# ruff: noqa: F811  (the synapse fixture is imported by name)
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from liaisonbot.chat.matrix.sync import TOKEN_KEY
from support.synapse import SynapseServer, synapse  # noqa: F401
from test_bridge_helpers import (
    event_of_type,
    make_world,
    notice_in_thread,
    running_bridge,
    slack_message,
)
from test_slack_harness import T1, all_text

pytestmark = [pytest.mark.asyncio, pytest.mark.synapse]


def click(verb: str, ts: str, ref: str, n: int) -> dict[str, Any]:
    return {"type": "block_actions", "api_app_id": "A0FAKE", "trigger_id": f"trig{n}",
            "team": {"id": T1}, "user": {"id": "U0ALICE", "team_id": T1},
            "channel": {"id": "C0ICC"}, "message": {"ts": ts},
            "container": {"type": "message", "message_ts": ts, "channel_id": "C0ICC"},
            "actions": [{"type": "button", "action_id": f"lb_{verb}", "value": ref,
                         "block_id": "lb-card", "action_ts": f"17000000{n}.1"}]}


def changed(message: dict[str, Any], before_text: str) -> dict[str, Any]:
    return {"type": "message", "subtype": "message_changed", "channel": message["channel"],
            "hidden": True, "ts": f"{time.time():.6f}",
            "message": {k: v for k, v in message.items() if k != "channel"}
            | {"edited": {"user": message["user"], "ts": f"{time.time():.6f}"}},
            "previous_message": {k: v for k, v in message.items() if k != "channel"}
            | {"text": before_text}}


def deleted(message: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "subtype": "message_deleted", "channel": message["channel"],
            "hidden": True, "ts": f"{time.time():.6f}", "deleted_ts": message["ts"],
            "previous_message": {k: v for k, v in message.items() if k != "channel"}}


def content(e: Any) -> dict[str, Any]:
    return e.source.get("content") or {}


async def _history(core: Any, request_id: int) -> list[tuple[str, dict[str, Any]]]:
    async with core.uow() as uow:
        return [(e.action, e.detail) for e in await uow.history.for_request(request_id)]


async def test_one_desk_across_slack_and_matrix(synapse: SynapseServer, tmp_path: Path) -> None:
    world = await make_world(synapse, tmp_path)
    bojan, room, fake = world.bojan, world.room, world.slack
    try:
        async with running_bridge(world) as bridge:
            slack = bridge.slack
            # ---- Slack → Matrix: open, the card appears in BA SPO's Matrix room
            await slack.command("open OP-1 to:ba-spo Bank records of X")
            m_card = await bojan.wait_for_message(
                room, lambda e: content(e).get("msgtype") == "m.notice" and "R-1" in e.body, 20)
            assert "Bank records of X" in m_card.body
            await fake.wait_for(lambda: slack.cards("C0ICC"), 10)
            s_card = slack.cards("C0ICC")[0]
            root = s_card["ts"]

            # ---- Matrix acks by command in the thread: Slack's card and thread follow
            await bojan.send_text(room, "!liaison ack R-1 on it", thread_root=m_card.event_id)
            await fake.wait_for(lambda: any(
                "acknowledged" in all_text(m) for m in slack.thread("C0ICC", root)), 20)
            await fake.wait_for(lambda: "acknowledged" in all_text(slack.cards("C0ICC")[0]), 10)

            # ---- Slack → Matrix relay with formatting, exact payload
            s_text = ("*Bold* _it_ `a&lt;b` see <https://example.org/x_y|https://example.org/x_y>"
                      " and <https://evil.example|https://bank.example> cc <@U0ALICE>"
                      "\n• one\n• two")
            alice_msg = slack_message(s_text, root)
            assert await slack.event(alice_msg, event_id="EvA1") == 200
            copy = await bojan.wait_for_message(room, notice_in_thread(m_card.event_id,
                                                                       "Alice A"), 20)
            c = content(copy)
            assert c["body"] == ("Alice A · icc-otp: *Bold* _it_ `a<b` see "
                                 "https://example.org/x_y and https://bank.example "
                                 "(https://evil.example) cc @Alice A\n- one\n- two")
            assert c["formatted_body"] == (
                '<b>Alice A · icc-otp</b>: <strong>Bold</strong> <em>it</em> '
                '<code>a&lt;b</code> see <a href="https://example.org/x_y">'
                'https://example.org/x_y</a> and <a href="https://bank.example">'
                'https://bank.example</a> (<a href="https://evil.example">'
                'https://evil.example</a>) cc @Alice A<br><ul><li>one</li><li>two</li></ul>')
            assert c["m.mentions"] == {}

            # ---- Matrix → Slack relay with formatting, exact payload
            html = ('<p><strong>Found</strong> <em>two</em> <code>x_1</code></p>'
                    '<ol><li>first</li></ol><a href="https://evil.example">https://bank.example'
                    '</a> <a href="https://matrix.to/#/@alice:x">Alice</a> @room')
            b_event = await bojan.send_text(room, "Found two x_1", thread_root=m_card.event_id,
                                            extra_content={"format": "org.matrix.custom.html",
                                                           "formatted_body": html})
            await fake.wait_for(lambda: any("ba-spo:*" in m["text"]
                                            for m in slack.thread("C0ICC", root)), 20)
            s_copy = next(m for m in slack.thread("C0ICC", root) if "ba-spo:*" in m["text"])
            mrkdwn = ("*Bojan Kovač · ba-spo:* *Found* _two_ `x_1`\n• first\n"
                      "<https://bank.example> (<https://evil.example>) Alice @room")
            assert s_copy["text"] == mrkdwn
            assert s_copy["blocks"] == [{"type": "section",
                                         "text": {"type": "mrkdwn", "text": mrkdwn}}]

            # ---- edits and deletions, Slack → Matrix
            # a "change" that leaves the words alone (a reply count, an unfurl) is no edit
            await slack.event(changed(alice_msg, s_text), event_id="EvA2")
            alice_msg["text"] = "*Bold* edited"
            await slack.event(changed(alice_msg, s_text), event_id="EvA3")
            edit = await bojan.wait_for_message(room, lambda e: (content(e).get(
                "m.relates_to") or {}).get("rel_type") == "m.replace" and content(e)[
                "m.relates_to"]["event_id"] == copy.event_id, 20)
            assert content(edit)["m.new_content"]["body"] == "Alice A · icc-otp: *Bold* edited"
            assert content(edit)["m.new_content"]["m.mentions"] == {}
            await slack.event(deleted(alice_msg), event_id="EvA4")
            await bojan.wait_for_event(room, event_of_type(
                "m.room.redaction", lambda e: e.redacts == copy.event_id), 20)

            # ---- edits and deletions, Matrix → Slack
            await bojan.client.room_send(room, "m.room.message", {
                "msgtype": "m.text", "body": "* Found three",
                "m.new_content": {"msgtype": "m.text", "body": "Found three"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": b_event}})
            await fake.wait_for(lambda: any(c.args.get("ts") == s_copy["ts"]
                                            for c in fake.calls("chat.update")), 20)
            updated = next(m for m in fake.messages("C0ICC") if m["ts"] == s_copy["ts"])
            assert updated["text"] == "*Bojan Kovač · ba-spo:* Found three"
            await bojan.client.room_redact(room, b_event)
            await fake.wait_for(lambda: any(c.args.get("ts") == s_copy["ts"]
                                            for c in fake.calls("chat.delete")), 20)
            assert all(m["ts"] != s_copy["ts"] for m in fake.messages("C0ICC"))

            # ---- a file in the Matrix thread: a notice on Slack, recorded in history
            await bojan.send_text(room, "scan.pdf", thread_root=m_card.event_id,
                                  msgtype="m.file", extra_content={
                                      "info": {"size": 2048}, "url": "mxc://example/abc"})
            await fake.wait_for(lambda: any("scan.pdf" in m["text"]
                                            for m in slack.thread("C0ICC", root)), 20)
            notice = next(m for m in slack.thread("C0ICC", root) if "scan.pdf" in m["text"])
            assert "2.0 KB" in notice["text"] and "Bojan Kovač · ba-spo" in notice["text"]

            # ---- loops: the bot's own copies and their edits come back; nothing is relayed
            echo = slack_message(mrkdwn, root, user="U0BOT", bot_id="B0BOT")
            await slack.event(echo, event_id="EvLoop1")
            await slack.event(changed(echo, "x"), event_id="EvLoop2")
            await slack.event(deleted(echo), event_id="EvLoop3")
            await slack.event(slack_message("sentinel", root), event_id="EvA5")
            await bojan.wait_for_message(room, notice_in_thread(m_card.event_id, "sentinel"), 20)
            await slack.settled()
            # nobody's words came back to their own side
            assert not [e for e in bojan.buffered_events(room) if "Bojan Kovač · ba-spo:" in
                        str(content(e).get("body", ""))]
            assert not [m for m in slack.thread("C0ICC", root) if "Alice A · icc-otp" in
                        m["text"]]

            # ---- Matrix answers, Slack closes by button
            await bojan.send_text(room, "!liaison answer R-1 Records attached",
                                  thread_root=m_card.event_id)
            await fake.wait_for(lambda: "answered" in all_text(slack.cards("C0ICC")[0]), 20)
            assert await slack.interact(click("close", root, "R-1", 1)) == 200
            await bojan.wait_for_message(room, lambda e: "closed" in e.body and (
                content(e).get("m.relates_to") or {}).get("rel_type") == "m.replace", 20)
            assert await slack.status(1) == "closed"

            # ---- Matrix → Slack request: Slack acks by button, answers, Matrix closes
            await bojan.send_text(room, "!liaison open OP-1 to:icc-otp Witness list")
            await fake.wait_for(lambda: len(slack.cards("C0ICC")) == 2, 20)
            card2 = slack.cards("C0ICC")[1]
            assert "Witness list" in all_text(card2) and "lb_ack" in all_text(card2)
            m_card2 = await bojan.wait_for_message(room, lambda e: "R-2" in e.body and content(
                e).get("msgtype") == "m.notice" and "m.relates_to" not in content(e), 20)
            assert await slack.interact(click("ack", card2["ts"], "R-2", 2)) == 200
            await bojan.wait_for_message(room, notice_in_thread(m_card2.event_id,
                                                                "acknowledged"), 20)
            await slack.command("answer R-2 Here they are")
            await bojan.wait_for_message(room, notice_in_thread(m_card2.event_id, "answered"),
                                         20)
            await bojan.send_text(room, "!liaison close R-2 thanks",
                                  thread_root=m_card2.event_id)
            await fake.wait_for(lambda: "closed" in all_text(slack.cards("C0ICC")[1]), 20)

            # ---- list / show / overdue agree on both sides
            await slack.command("list OP-1 all", name="list")
            await bojan.send_text(room, "!liaison list OP-1 all")
            m_list = await bojan.wait_for_message(room, lambda e: "OP-1: 2 requests" in e.body,
                                                  20)
            s_list = (await fake.wait_for_call("response_url", 1, 10))
            s_text_list = next(c.args for c in fake.calls("response_url")
                               if c.args.get("name") == "list")
            for row in ("R-1 · information · icc-otp → ba-spo · closed",
                        "R-2 · information · ba-spo → icc-otp · closed"):
                assert row in m_list.body and row in json.dumps(s_text_list,
                                                                ensure_ascii=False)
            assert s_list
            await slack.command("overdue", name="overdue")
            await bojan.send_text(room, "!liaison overdue")
            await bojan.wait_for_message(room, lambda e: "overdue" in e.body.lower()
                                         and content(e).get("msgtype") == "m.notice", 20)

        actions = [a for a, _ in await _history(bridge.core, 1)]
        assert actions.count("relayed") == 4  # Alice, Bojan, the file, the sentinel
        assert "relay edited" in actions and "relay deleted" in actions
        relayed = [d for a, d in await _history(bridge.core, 1) if a == "relayed"]
        assert relayed[2]["files"] == [{"name": "scan.pdf", "size": 2048}]
    finally:
        await bojan.close()
        await fake.stop()


async def test_restart_mid_relay_delivers_each_once(synapse: SynapseServer,
                                                   tmp_path: Path) -> None:
    world = await make_world(synapse, tmp_path)
    bojan, room, fake = world.bojan, world.room, world.slack
    try:
        async with running_bridge(world) as bridge:
            await bridge.slack.command("open OP-9 to:ba-spo Phone records")
            m_card = await bojan.wait_for_message(
                room, lambda e: content(e).get("msgtype") == "m.notice" and "R-1" in e.body, 20)
            await fake.wait_for(lambda: bridge.slack.cards("C0ICC"), 10)
            root = bridge.slack.cards("C0ICC")[0]["ts"]
            await bridge.slack.settled()
            await bridge.pause_outbox()  # from here on, nothing is delivered
            async with bridge.core.uow() as uow:
                token_before = await uow.state.get(TOKEN_KEY)
            await bojan.send_text(room, "from matrix *before* the crash",
                                  thread_root=m_card.event_id)
            await bridge.slack.event(slack_message("from slack before the crash", root),
                                     event_id="EvR1")
            await bridge.wait_backlog(2)  # both recorded and queued, neither delivered
        # The crash also lost the sync token's last save: the Matrix event is synced again.
        from liaisonbot.store.db import make_engine
        from liaisonbot.store.uow import SqlUnitOfWorkFactory

        engine = make_engine(world.settings.database_url)
        async with SqlUnitOfWorkFactory(engine)() as uow:
            assert token_before is not None
            await uow.state.put(TOKEN_KEY, token_before, bridge.core.clock.now())
            await uow.commit()
        await engine.dispose()

        async with running_bridge(world) as bridge:
            # Slack retries the event after the restart: deduped by event id
            await bridge.slack.event(slack_message("from slack before the crash", root),
                                     event_id="EvR1", retry=1)
            await bojan.wait_for_message(room, notice_in_thread(m_card.event_id,
                                                                "from slack before"), 20)
            await fake.wait_for(lambda: any("before* the crash" in m["text"] for m in
                                            bridge.slack.thread("C0ICC", root)), 20)
            # a sentinel after everything: when it arrives, any duplicate would have too
            await bridge.slack.event(slack_message("sentinel", root), event_id="EvR2")
            await bojan.send_text(room, "matrix sentinel", thread_root=m_card.event_id)
            await bojan.wait_for_message(room, notice_in_thread(m_card.event_id, "sentinel"),
                                         20)
            await fake.wait_for(lambda: any("matrix sentinel" in m["text"] for m in
                                            bridge.slack.thread("C0ICC", root)), 20)
            await bridge.slack.settled()
            s_thread = [m["text"] for m in bridge.slack.thread("C0ICC", root)]
            assert sum("before* the crash" in t for t in s_thread) == 1
            m_copies = [e for e in bojan.buffered_events(room)
                        if notice_in_thread(m_card.event_id, "from slack before")(e)]
            assert m_copies == []  # the one copy was consumed by the wait above
            actions = [a for a, _ in await _history(bridge.core, 1)]
            assert actions.count("relayed") == 4
    finally:
        await bojan.close()
        await fake.stop()


# Slack text as the Events API delivers it (typed <>& arrive escaped; an API client can send
# raw entities) → (Matrix body after the author, Matrix formatted_body after the author).
SLACK_HOSTILE = [
    ("<!channel> <!here> <!everyone> @room",
     "@channel @here @everyone @\u2060room", "@channel @here @everyone @\u2060room"),
    ("&lt;script&gt;alert(1)&lt;/script&gt; <b>raw</b>",
     "<script>alert(1)</script> <b>raw</b>",
     "&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;raw&lt;/b&gt;"),
    ("<https://evil.example|https://bank.example>",
     "https://bank.example (https://evil.example)",
     '<a href="https://bank.example">https://bank.example</a> '
     '(<a href="https://evil.example">https://evil.example</a>)'),
    ("<https://evil.example/\u202egnp.exe|invoice>",
     "invoice (https://evil.example/gnp.exe)",
     'invoice (<a href="https://evil.example/gnp.exe">https://evil.example/gnp.exe</a>)'),
    ("@\u200broom <\u200b!channel> pay\u202e\u2066moc.evil",
     "@\u2060room <!channel> paymoc.evil", "@\u2060room &lt;!channel&gt; paymoc.evil"),
    ("<@U0EVE> and <!subteam^S123|@admins>", "@Eve <!here> @\u2060room and @admins",
     "@Eve &lt;!here&gt; @\u2060room and @admins"),
    ("&lt;a href='javascript:alert(1)'&gt;x&lt;/a&gt;",
     "<a href='javascript:alert(1)'>x</a>",
     "&lt;a href=&#x27;javascript:alert(1)&#x27;&gt;x&lt;/a&gt;"),
]
# Matrix content → the Slack mrkdwn after the author.
MATRIX_HOSTILE = [
    ({"formatted_body": '<a href="https://evil.example">https://bank.example</a>'},
     "<https://bank.example> (<https://evil.example>)"),
    ({"formatted_body": '<script>alert(1)</script><img src=x onerror=alert(1)>'
                        '<iframe src="https://x"></iframe>ok'}, "ok"),
    ({"formatted_body": '@room <font color=red>red</font> <a href="javascript:alert(1)">click'
                        '</a>'}, "@room red click (javascript:alert(1))"),
    ({"body": "<!channel> <@U0BOT> &amp; <https://evil.example|bank>"},
     "&lt;!channel&gt; &lt;@U0BOT&gt; &amp;amp; &lt;<https://evil.example>|bank&gt;"),
    ({"formatted_body": '\u202eevil\u202c \u200b@room <a href="https://matrix.to/#/@admin:x">'
                        '@room</a>'}, "evil @room @room"),
    ({"formatted_body": "<mx-reply><blockquote>quoted <!here></blockquote></mx-reply>"
                        "reply <b>text</b>"}, "reply *text*"),
]
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b")


async def test_hostile_text_crosses_both_ways_inert(synapse: SynapseServer,
                                                    tmp_path: Path) -> None:
    world = await make_world(synapse, tmp_path)
    bojan, room, fake = world.bojan, world.room, world.slack
    fake.add_user(T1, "U0EVE", "Eve <!here> @room\u202e", "Eve")
    await bojan.client.set_displayname("Bojan <!channel> \u202eKovač")
    try:
        async with running_bridge(world) as bridge:
            slack = bridge.slack
            await slack.command("open OP-6 to:ba-spo Hostile", user="U0EVE")
            m_card = await bojan.wait_for_message(
                room, lambda e: content(e).get("msgtype") == "m.notice" and "R-1" in e.body, 20)
            await fake.wait_for(lambda: slack.cards("C0ICC"), 10)
            root = slack.cards("C0ICC")[0]["ts"]
            for i, (extra, _) in enumerate(MATRIX_HOSTILE):
                html = {"format": "org.matrix.custom.html", **extra} \
                    if "formatted_body" in extra else {}
                await bojan.send_text(room, extra.get("body", f"hostile {i}"),
                                      thread_root=m_card.event_id, extra_content=html)
            author = "Eve <!here> @\u2060room · icc-otp"
            for i, (text, body, formatted) in enumerate(SLACK_HOSTILE):
                # one at a time: Bolt handles events after acking them, in any order
                await slack.event(slack_message(text, root, user="U0EVE"), event_id=f"EvH{i}")
                copy = await bojan.wait_for_message(
                    room, notice_in_thread(m_card.event_id, author + ":"), 20)
                c = content(copy)
                assert c["body"] == f"{author}: {body}", text
                assert c["formatted_body"] == \
                    f"<b>Eve &lt;!here&gt; @\u2060room · icc-otp</b>: {formatted}", text
                assert c["m.mentions"] == {} and "@room" not in c["body"]
                assert not BIDI & set(c["body"] + c["formatted_body"])

            def copies() -> list[dict[str, Any]]:
                return [m for m in slack.thread("C0ICC", root) if "ba-spo:*" in m["text"]]
            await fake.wait_for(lambda: len(copies()) == len(MATRIX_HOSTILE), 20)
            head = "*Bojan &lt;!channel&gt; Kovač · ba-spo:* "
            for message, (extra, mrkdwn) in zip(copies(), MATRIX_HOSTILE, strict=True):
                assert message["text"] == head + mrkdwn, extra
                assert message["blocks"] == [
                    {"type": "section", "text": {"type": "mrkdwn", "text": head + mrkdwn}}]
                raw = message["text"]
                assert "<!" not in raw and "<@" not in raw and not BIDI & set(raw)
                assert all(part.startswith("https://") for part in raw.split("<")[1:])
    finally:
        await bojan.close()
        await fake.stop()


async def _deliveries(world: Any) -> list[tuple[str, str, str]]:
    """(room, status, post json) of every outbox entry, straight from the database."""
    import sqlite3

    with sqlite3.connect(world.tmp / "bridge.db") as db:
        return list(db.execute("SELECT room, status, post FROM outbox ORDER BY id"))


async def test_confidential_thread_never_reaches_the_other_room(synapse: SynapseServer,
                                                                tmp_path: Path) -> None:
    """A thread message on a confidential request, from Slack and from Matrix: the other
    office's room gets nothing of it; the parties' listed members get it by direct message.
    (Both offices list members: a confidential request to or from an office that lists none
    is refused at open, issue 24.)"""
    world = await make_world(synapse, tmp_path, icc_members=("slack:U0ALICE",))
    bojan, room, fake = world.bojan, world.room, world.slack

    def top_level(ref: str) -> Any:
        return lambda e: (content(e).get("msgtype") == "m.notice" and ref in e.body
                          and "m.relates_to" not in content(e))
    try:
        async with running_bridge(world) as bridge:
            slack = bridge.slack
            await slack.command("open OP-7 to:ba-spo conf:confidential Witness W-17")
            m_card = await bojan.wait_for_message(room, top_level("R-1"), 20)
            assert "W-17" not in m_card.body
            await fake.wait_for(lambda: slack.cards("C0ICC"), 10)
            root = slack.cards("C0ICC")[0]["ts"]
            await slack.event(slack_message("the new address is 12 Elm St", root),
                              event_id="EvC1")
            await bojan.send_text(room, "she moved to 9 Oak Rd", thread_root=m_card.event_id)

            # a positive barrier: a restricted request's thread, both ways, after them
            await slack.command("open OP-7 to:ba-spo Bank records")
            m_card2 = await bojan.wait_for_message(room, top_level("R-2"), 20)
            await fake.wait_for(lambda: len(slack.cards("C0ICC")) == 2, 10)
            root2 = slack.cards("C0ICC")[1]["ts"]
            await slack.event(slack_message("slack sentinel", root2), event_id="EvC2")
            await bojan.wait_for_message(room, notice_in_thread(m_card2.event_id,
                                                                "slack sentinel"), 20)
            await bojan.send_text(room, "matrix sentinel", thread_root=m_card2.event_id)
            await fake.wait_for(lambda: any("matrix sentinel" in m["text"]
                                            for m in slack.thread("C0ICC", root2)), 20)
            await slack.settled()  # every inbound thing handled, every post delivered
            await bojan.sync_once()

            assert not [e for e in bojan.buffered_events(room) if "12 Elm St" in json.dumps(
                e.source, ensure_ascii=False)]
            assert not [m for m in fake.messages("C0ICC") if "9 Oak Rd" in json.dumps(
                m, ensure_ascii=False)]
            relayed = [d for a, d in await _history(bridge.core, 1) if a == "relayed"]
            assert [d["text"] for d in relayed] == ["the new address is 12 Elm St",
                                                    "she moved to 9 Oak Rd"]
        deliveries = await _deliveries(world)
        with_words = [(r, s) for r, s, post in deliveries if "12 Elm St" in post]
        # Alice's words went to BA SPO's one listed member, Bojan, by DM (and were delivered);
        # Bojan's to ICC OTP's, Alice, by DM on Slack: never to the other office's room
        assert with_words == [(f"matrix:{bojan.user_id}", "done")]
        assert [(r, s) for r, s, post in deliveries if "9 Oak Rd" in post] == [
            ("slack:U0ALICE", "done")]
    finally:
        await bojan.close()
        await fake.stop()
