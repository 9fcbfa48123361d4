"""The Slack adapter end to end: signed requests to the bot's real endpoint, FakeSlack behind."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support.fake_slack import FakeSlack, signed_headers, slash_command_body
from test_slack_harness import SECRET, T1, T2, Bot, all_text, running_bot

HOSTILE = "Need <!channel> & <@U0EVIL> records <https://evil.example|bank> now"


async def open_request(bot: Bot, text: str = "open ICC-01/14 to:spo Bank records") -> dict:
    status, _, _ = await bot.command(text)
    assert status == 200
    await bot.slack.wait_for(lambda: bot.cards("C0SPO") and bot.cards("C0ICC"), 20)
    await bot.settled()
    return bot.cards("C0SPO")[-1]


def thread_message(text: str, root: str, *, user: str = "U0BOB", channel: str = "C0SPO",
                   **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": channel, "user": user, "text": text,
            "ts": f"{datetime.now(UTC).timestamp():.6f}", "thread_ts": root, **extra}


async def test_slash_open_posts_cards_escaped_and_replies_ephemeral(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        card = await open_request(bot, f"open ICC-01/14 to:spo {HOSTILE}")
        origin = bot.cards("C0ICC")[-1]
        for message in (card, origin):
            rendered = all_text(message)
            assert "R-1" in rendered and "Bank" not in rendered
            for raw in ("<!channel>", "<@U0EVIL>", "<https://evil"):
                assert raw not in rendered
            assert "&lt;!channel&gt;" in rendered and "&amp;" in rendered
            assert message["metadata"]["event_type"] == "liaisonbot_delivery"
        # buttons by side: the requested office acks/answers, the requesting one withdraws
        card_json = json.dumps(card["blocks"])
        assert "lb_ack" in card_json and "lb_close" not in card_json
        assert "lb_withdraw" in json.dumps(origin["blocks"])
        assert "lb_ack" not in json.dumps(origin["blocks"])
        replies = await bot.slack.wait_for_call("response_url")
        assert replies[0].args["response_type"] == "ephemeral" and "R-1" in replies[0].args["text"]


async def test_ack_within_deadline_while_the_desk_is_slow(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        real = bot.core.desk.handle_command

        async def slow(*args: Any, **kw: Any) -> Any:
            await asyncio.sleep(3.2)  # a database far slower than Slack's 3 s
            return await real(*args, **kw)

        bot.core.desk.handle_command = slow  # type: ignore[method-assign]
        status, _, elapsed = await bot.command("open ICC-1 to:spo Slow but sure")
        assert status == 200 and elapsed < 1.0
        await bot.slack.wait_for(lambda: bot.cards("C0SPO"), 6)
        await bot.slack.wait_for_call("response_url", timeout=2)


async def test_forged_signature_and_stale_timestamp_are_refused(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        body = slash_command_body(text="open ICC-1 to:spo Forged", channel_id="C0ICC")
        forged, _, _ = await bot.post(body, secret="not-the-secret")
        # the old stand-in for a missing secret, and an empty one, open no door either
        for stand_in in ("unset", ""):
            assert (await bot.post(body, secret=stand_in))[0] == 401, stand_in
        old = int(datetime.now().timestamp()) - 600
        stale_headers = signed_headers(SECRET, body, timestamp=old)
        stale, _, _ = await bot.post(body, headers=stale_headers)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        unsigned, _, _ = await bot.post(body, headers=form)
        assert (forged, stale, unsigned) == (401, 401, 401)
        # a positive barrier: a signed command after them is answered; nothing else happened
        signed, _, _ = await bot.command("help")
        assert signed == 200
        await bot.slack.wait_for_call("response_url")
        await bot.settled()
        assert bot.slack.calls("chat.postMessage") == []
        assert len(bot.slack.calls("response_url")) == 1


def test_slack_platform_refuses_to_build_without_its_secret(testbot: Any) -> None:
    """Fail closed in the adapter too: http mode without the signing secret, socket mode
    without the app token, each a one-sentence exit naming the variable."""
    import pytest

    from liaisonbot.chat.slack.platform import build_slack
    from liaisonbot.config import SlackSettings

    settings = testbot.core.settings
    for mode, env, name in (
            ("http", {"LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-t"}, "LIAISONBOT_SLACK_SIGNING_SECRET"),
            ("http", {"LIAISONBOT_SLACK_SIGNING_SECRET": "  "}, "LIAISONBOT_SLACK_SIGNING_SECRET"),
            ("socket", {"LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-t"}, "LIAISONBOT_SLACK_APP_TOKEN")):
        slack = SlackSettings(enabled=True, mode=mode)
        with pytest.raises(SystemExit) as refused:
            build_slack(replace(settings, slack=slack), testbot.core, env=env)
        message = str(refused.value.code)
        assert name in message and len(message.splitlines()) == 1


async def test_retried_thread_event_is_relayed_once_and_own_posts_ignored(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        card = await open_request(bot)
        origin = bot.cards("C0ICC")[-1]
        event = thread_message("We found <b>two</b> files & more", card["ts"])
        assert await bot.event(event, event_id="Ev1") == 200
        assert await bot.event(event, event_id="Ev1", retry=1) == 200
        assert await bot.event(event, event_id="Ev1", retry=2) == 200
        await bot.slack.wait_for(lambda: bot.thread("C0ICC", origin["ts"]), 20)
        # the bot's own post and another bot's post come back as events: never relayed
        own = thread_message("echo", card["ts"], user="U0BOT", bot_id="B0BOT")
        other = thread_message("bot", card["ts"], subtype="bot_message", bot_id="B9")
        await bot.event(own, event_id="Ev2")
        await bot.event(other, event_id="Ev3")
        await bot.event(thread_message("top level", card["ts"]) | {"thread_ts": None},
                        event_id="Ev4")
        await bot.settled()  # every acknowledged event handled, every post delivered
        relayed = bot.thread("C0ICC", origin["ts"])
        assert len(relayed) == 1
        assert "&lt;b&gt;two&lt;/b&gt; files &amp; more" in all_text(relayed[0])
        files = thread_message("", card["ts"], files=[{"name": "scan.pdf", "size": 2048}])
        await bot.event(files | {"subtype": "file_share"}, event_id="Ev5")
        await bot.slack.wait_for(lambda: len(bot.thread("C0ICC", origin["ts"])) == 2, 20)
        assert "scan.pdf" in bot.thread("C0ICC", origin["ts"])[-1]["text"]


async def test_double_submitted_command_opens_one_request_even_across_a_minute(
        tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        results = await asyncio.gather(*(bot.command("open ICC-1 to:spo Twice") for _ in range(2)))
        assert [r[0] for r in results] == [200, 200]
        await bot.slack.wait_for(lambda: bot.cards("C0SPO"), 20)
        # the next submission falls just after a minute boundary: still the same command
        now = datetime.now(UTC)
        bot.clock.offset = (now.replace(second=59, microsecond=800_000) - now)
        await bot.command("open ICC-1 to:spo Edge")
        await bot.slack.wait_for(lambda: len(bot.cards("C0SPO")) == 2, 20)
        bot.clock.offset += timedelta(seconds=0.4)  # the next minute has begun
        await bot.command("open ICC-1 to:spo Edge")

        def refusals() -> int:
            texts = [c.args.get("text", "") for c in bot.slack.calls("response_url")]
            return sum("already have" in t for t in texts)

        await bot.slack.wait_for(lambda: refusals() == 2, 20)
        await bot.settled()
        assert len(bot.cards("C0SPO")) == 2  # "Twice" once, "Edge" once
        bot.clock.offset += timedelta(minutes=3)  # much later the same words open a new one
        await bot.command("open ICC-1 to:spo Edge")
        await bot.slack.wait_for(lambda: len(bot.cards("C0SPO")) == 3, 20)


async def test_rate_limit_storm_and_dropped_post_each_delivered_exactly_once(
        tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        bot.slack.rate_limit("chat.postMessage", times=3, retry_after=1)
        bot.slack.drop_after_apply("chat.postMessage", times=1)
        for n in range(3):
            await bot.command(f"open ICC-{n} to:spo Storm {n}")
        await bot.slack.wait_for(lambda: len(bot.cards("C0SPO")) >= 3
                                 and len(bot.cards("C0ICC")) >= 3, 15)
        await bot.settled(10)
        ids = [m["metadata"]["event_payload"]["delivery_id"]
               for ch in ("C0SPO", "C0ICC") for m in bot.slack.messages(ch)]
        assert len(ids) == len(set(ids)) == 6
        assert 429 in [c.status for c in bot.slack.calls("chat.postMessage")]
        assert bot.platform.gateway.history_checks >= 1


async def test_buttons_and_forms_change_status(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        card = await open_request(bot)
        origin = bot.cards("C0ICC")[-1]

        def click(verb: str, channel: str, ts: str, user: str, n: int) -> dict[str, Any]:
            return {"type": "block_actions", "api_app_id": "A0FAKE", "trigger_id": f"trig{n}",
                    "team": {"id": T1}, "user": {"id": user, "team_id": T1},
                    "channel": {"id": channel}, "message": {"ts": ts},
                    "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                    "actions": [{"type": "button", "action_id": f"lb_{verb}", "value": "R-1",
                                 "block_id": "lb-card-1", "action_ts": f"17000000{n}.1"}]}

        assert await bot.interact(click("ack", "C0SPO", card["ts"], "U0BOB", 1)) == 200
        await bot.slack.wait_for(lambda: bot.slack.calls("chat.update"), 20)
        assert await bot.status(1) == "acknowledged"
        await bot.interact(click("answer", "C0SPO", card["ts"], "U0BOB", 2))
        opened = await bot.slack.wait_for_call("views.open")
        view = opened[-1].args["view"]
        assert view["callback_id"] == "lb_action_form"
        submission = {"type": "view_submission", "api_app_id": "A0FAKE", "team": {"id": T1},
                      "user": {"id": "U0BOB", "team_id": T1},
                      "view": {**view, "id": "V1", "state": {"values": {
                          "text": {"text": {"type": "plain_text_input",
                                            "value": "Records <attached> & sent"}},
                          "conditions": {"conditions": {
                              "type": "plain_text_input",
                              "value": 'for use in "OP-1" only'}}}}}}
        assert [b["block_id"] for b in view["blocks"]] == ["text", "conditions"]
        assert await bot.interact(submission) == 200
        async def answered() -> bool:
            return await bot.status(1) == "answered"

        await bot.slack.wait_for(answered, 3)
        async with bot.core.uow() as uow:  # the form's conditions on use, kept with the answer
            request = await uow.requests.get(1)
        assert request is not None and request.conditions == 'for use in "OP-1" only'
        assert request.answer == "Records <attached> & sent"
        await bot.settled()
        updated = next(m for m in bot.slack.messages("C0ICC") if m["ts"] == origin["ts"])
        assert "lb_close" in json.dumps(updated["blocks"]) and "answered" in all_text(updated)
        await bot.interact(click("close", "C0ICC", origin["ts"], "U0ALICE", 3))

        async def closed() -> bool:
            return await bot.status(1) == "closed"

        await bot.slack.wait_for(closed, 20)
        await bot.settled()
        # a wrong-side click gets an ephemeral refusal, status unchanged
        await bot.interact(click("withdraw", "C0SPO", card["ts"], "U0BOB", 4))
        eph = await bot.slack.wait_for_call("chat.postEphemeral", count=4)
        assert "Only the requesting office" in eph[-1].args["text"]


async def test_open_form_from_bare_open(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        status, _, _ = await bot.command("open")
        assert status == 200
        view = (await bot.slack.wait_for_call("views.open"))[0].args["view"]
        assert view["callback_id"] == "lb_open_form"
        assert [o["value"] for o in view["blocks"][1]["element"]["options"]] == ["spo", "desk"]
        values = {"case": {"case": {"type": "plain_text_input", "value": "OP-2026-017"}},
                  "to": {"to": {"type": "static_select", "selected_option": {"value": "spo"}}},
                  "kind": {"kind": {"type": "static_select", "selected_option": {"value": "mla"}}},
                  "due": {"due": {"type": "plain_text_input", "value": ""}},
                  "urgent": {"urgent": {"type": "checkboxes",
                                        "selected_options": [{"value": "urgent"}]}},
                  "summary": {"summary": {"type": "plain_text_input", "value": "Witness\nlist"}}}
        await bot.interact({"type": "view_submission", "api_app_id": "A0FAKE",
                            "team": {"id": T1}, "user": {"id": "U0ALICE", "team_id": T1},
                            "view": {**view, "id": "V9", "state": {"values": values}}})
        await bot.slack.wait_for(lambda: bot.cards("C0SPO"), 20)
        assert "OP-2026-017" in all_text(bot.cards("C0SPO")[0])
        assert "URGENT" in all_text(bot.cards("C0SPO")[0])


async def test_mention_in_thread_is_a_command_not_a_relay(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        card = await open_request(bot)
        text = "<@U0BOT> ack R-1 eta:2099-01-05 on it"
        mention = thread_message(text, card["ts"]) | {"type": "app_mention"}
        await bot.event(mention, event_id="EvM1")
        await bot.event(thread_message(text, card["ts"]), event_id="EvM2")  # its message twin
        await bot.event(mention, event_id="EvM1", retry=1)
        eph = await bot.slack.wait_for_call("chat.postEphemeral")
        assert eph[0].args["thread_ts"] == card["ts"]
        await bot.settled()
        assert await bot.status(1) == "acknowledged"
        origin = bot.cards("C0ICC")[-1]
        notes = bot.thread("C0ICC", origin["ts"])
        assert len(notes) == 1 and "acknowledged" in notes[0]["text"]  # a note, no relay
        assert len(bot.slack.calls("chat.postEphemeral")) == 1


async def test_payload_word_in_a_slash_command(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        await open_request(bot, "open ICC-1 to:spo The payload of the truck")
        status, _, _ = await bot.command("show payload", name="p")
        assert status == 200
        status, _, _ = await bot.command("show R-1 payload", name="p")
        assert status == 200
        replies = await bot.slack.wait_for(
            lambda: [c for c in bot.slack.calls("response_url") if c.args["name"] == "p"]
            if len([c for c in bot.slack.calls("response_url") if c.args["name"] == "p"]) == 2
            else None, 3)
        assert all(r.args["response_type"] == "ephemeral" for r in replies)


async def test_who_is_answered_ephemerally_to_the_actor(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        status, _, _ = await bot.command("who spo", name="who")
        assert status == 200
        replies = await bot.slack.wait_for_call("response_url")
        reply = replies[0].args
        assert reply["name"] == "who" and reply["response_type"] == "ephemeral"
        shown = all_text(reply)
        assert "BA SPO (spo)" in shown and "Bojan Kovačević, liaison officer" in shown
        assert "+38733555014" in shown and "slack:U0BOB" in shown and "Bosnian and English" \
            in shown
        assert "<@U0BOB>" not in shown  # a reference, never a ping
        # A channel bound to no office is refused; nothing was posted anywhere.
        await bot.command("who spo", channel="C0ELSEWHERE", name="unbound")
        refused = await bot.slack.wait_for_call("response_url", count=2)
        assert "not bound to any office" in refused[1].args["text"]
        assert "+38733555014" not in all_text(refused[1].args)
        await bot.settled()
        assert bot.slack.calls("chat.postMessage") == []


async def test_two_workspaces(tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        slack.add_team(T2, "xoxb-two", "U2BOT", "B2BOT")
        env = {"LIAISONBOT_SLACK_BOT_TOKENS": f"{T1}=xoxb-test,{T2}=xoxb-two",
               "LIAISONBOT_SLACK_SIGNING_SECRET": SECRET}
        async with running_bot(tmp_path, spo_room=f"slack:{T2}/C0SPO", env=env,
                               slack=slack) as bot:
            await bot.command("open ICC-1 to:spo Across workspaces")
            await slack.wait_for(lambda: bot.cards("C0SPO", T2) and bot.cards("C0ICC", T1), 20)
            await bot.settled()
            card = bot.cards("C0SPO", T2)[0]
            assert {c.team_id for c in slack.calls("chat.postMessage")} == {T1, T2}
            await bot.event(thread_message("from two", card["ts"]), event_id="EvT2", team=T2)
            origin = bot.cards("C0ICC", T1)[0]
            await slack.wait_for(lambda: bot.thread("C0ICC", origin["ts"], T1), 20)
            # the same channel id in the other workspace is another room: not a thread there
            await bot.event(thread_message("wrong team", card["ts"]), event_id="EvT1", team=T1)
            await bot.settled()
            assert len(bot.thread("C0ICC", origin["ts"], T1)) == 1
            health = await bot.platform.health()
            assert health["ok"] and sorted(t["team"] for t in health["teams"]) == [T1, T2]
            async with bot.http.get(bot.url.replace("/slack/events", "/healthz")) as resp:
                assert resp.status == 200 and (await resp.json())["slack"]["mode"] == "http"


async def test_socket_mode_slash_command(tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        slack.add_app_token("xapp-1")
        env = {"LIAISONBOT_SLACK_BOT_TOKEN": "xoxb-test", "LIAISONBOT_SLACK_APP_TOKEN": "xapp-1"}
        async with running_bot(tmp_path, mode="socket", env=env, slack=slack) as bot:
            from support.fake_slack import slash_command_payload

            payload = slash_command_payload(text="open ICC-1 to:spo Over the socket",
                                            channel_id="C0ICC", user_id="U0ALICE",
                                            response_url=slack.response_url("s"))
            ack = await slack.socket_request("slash_commands", payload,
                                             accepts_response_payload=True)
            assert ack["envelope_id"]
            # Both cards: the relay below reaches the origin's thread once its card is out.
            await slack.wait_for(lambda: bot.cards("C0SPO") and bot.cards("C0ICC"), 20)
            await slack.wait_for_call("response_url")
            health = await bot.platform.health()
            assert health["ok"] and health["socket_connected"] is True
            card = bot.cards("C0SPO")[-1]
            # A button over the socket, and a thread reply relayed as an Events API envelope.
            click = {"type": "block_actions", "api_app_id": "A0FAKE", "trigger_id": "t1",
                     "team": {"id": T1}, "user": {"id": "U0BOB", "team_id": T1},
                     "channel": {"id": "C0SPO"}, "message": {"ts": card["ts"]},
                     "container": {"type": "message", "message_ts": card["ts"],
                                   "channel_id": "C0SPO"},
                     "actions": [{"type": "button", "action_id": "lb_ack", "value": "R-1",
                                  "block_id": "lb-card-1", "action_ts": "1700000001.1"}]}
            assert (await slack.socket_request("interactive", click))["envelope_id"]

            async def acked() -> bool:
                return await bot.status(1) == "acknowledged"

            await slack.wait_for(acked, 20)
            from support.fake_slack import event_envelope

            reply = {"type": "message", "channel": "C0SPO", "user": "U0BOB",
                     "text": "Over the socket too", "ts": "1700000100.000200",
                     "thread_ts": card["ts"], "team": T1}
            await slack.socket_request("events_api", event_envelope(reply, team_id=T1,
                                                                    event_id="EvSOCK1"))
            origin = bot.cards("C0ICC")[-1]
            await slack.wait_for(lambda: any("Over the socket too" in all_text(m) for m in
                                             bot.thread("C0ICC", origin["ts"])), 20)


async def test_incomplete_and_complete_buttons_open_their_forms(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as bot:
        card = await open_request(bot)
        origin = bot.cards("C0ICC")[-1]
        assert "lb_incomplete" in json.dumps(card["blocks"])

        def click(verb: str, channel: str, ts: str, user: str, n: int) -> dict[str, Any]:
            return {"type": "block_actions", "api_app_id": "A0FAKE", "trigger_id": f"trig{n}",
                    "team": {"id": T1}, "user": {"id": user, "team_id": T1},
                    "channel": {"id": channel}, "message": {"ts": ts},
                    "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                    "actions": [{"type": "button", "action_id": f"lb_{verb}", "value": "R-1",
                                 "block_id": "lb-card-1", "action_ts": f"17000000{n}.1"}]}

        async def submit(field: str, text_value: str, user: str, n: int) -> None:
            opened = await bot.slack.wait_for(lambda: bot.slack.calls("views.open")[n - 1:], 20)
            view = opened[-1].args["view"]
            assert view["callback_id"] == "lb_action_form"
            assert await bot.interact({
                "type": "view_submission", "api_app_id": "A0FAKE", "team": {"id": T1},
                "user": {"id": user, "team_id": T1},
                "view": {**view, "id": f"V{n}", "state": {"values": {
                    field: {field: {"type": "plain_text_input", "value": text_value}}}}}}) == 200

        async def status_is(wanted: str) -> bool:
            return await bot.status(1) == wanted

        await bot.interact(click("incomplete", "C0SPO", card["ts"], "U0BOB", 1))
        await submit("missing", "the account number", "U0BOB", 1)
        await bot.slack.wait_for(lambda: status_is("incomplete"), 20)
        await bot.settled()
        updated = next(m for m in bot.slack.messages("C0ICC") if m["ts"] == origin["ts"])
        assert "lb_complete" in json.dumps(updated["blocks"])
        assert "Missing: the account number" in all_text(updated)
        await bot.interact(click("complete", "C0ICC", origin["ts"], "U0ALICE", 2))
        await submit("supplied", "IBAN BA39 1234", "U0ALICE", 2)
        await bot.slack.wait_for(lambda: status_is("open"), 20)


async def test_a_reply_whose_response_url_expired_reaches_the_person_in_the_channel(
        tmp_path: Path) -> None:
    """A command worked after its response URL expired (a restart long after, Slack allows 30
    minutes): the reply is posted with chat.postEphemeral to the person in the channel."""
    async with running_bot(tmp_path) as bot:
        bot.slack.expire_response_url("late")
        status, _, _ = await bot.command("help", name="late")
        assert status == 200
        eph = await bot.slack.wait_for_call("chat.postEphemeral")
        assert eph[0].args["user"] == "U0ALICE" and eph[0].args["channel"] == "C0ICC"
        await bot.settled()
        assert [c.status for c in bot.slack.calls("response_url")] == [404]
        assert len(bot.slack.calls("chat.postEphemeral")) == 1


async def test_a_signed_request_replayed_minutes_later_is_not_acted_on_again(
        tmp_path: Path) -> None:
    """A captured signed slash command sent again 3 minutes later (still inside Slack's
    5-minute signature window) opens nothing: its Slack identity (team and trigger id) is
    already in the inbox, kept far longer than the window. Issue 22, item 5."""
    async with running_bot(tmp_path) as bot:
        body = slash_command_body(text="open ICC-1 to:spo Captured once", user_id="U0ALICE",
                                  channel_id="C0ICC", team_id=T1,
                                  response_url=bot.slack.response_url("r"))
        headers = signed_headers(SECRET, body)
        assert (await bot.post(body, headers=headers))[0] == 200
        await bot.slack.wait_for(lambda: len(bot.cards("C0SPO")) == 1, 20)
        await bot.settled()
        bot.clock.offset += timedelta(minutes=3)
        status, _, _ = await bot.post(body, headers=headers)  # the same bytes, same signature
        assert status == 200  # acknowledged (Slack would otherwise retry it), not acted on
        await bot.settled()
        # A positive barrier: a new command after the replay is answered, and still one card.
        await bot.command("open ICC-1 to:spo A new one")
        await bot.slack.wait_for(lambda: len(bot.cards("C0SPO")) == 2, 20)
        await bot.settled()
        texts = [card.get("text", "") for card in bot.cards("C0SPO")]
        assert sum("Captured once" in t for t in texts) == 1, texts
        async with bot.core.uow(read_only=True) as uow:
            opened = await uow.requests.all_for_case("ICC-1")
        assert sorted(r.summary for r in opened) == ["A new one", "Captured once"]


async def test_card_with_two_measures_and_a_partial_answer(tmp_path: Path) -> None:
    """Issue 24: one card, two measures; a partial answer updates the card in place (chat.update)
    on both sides, its blocks naming each measure's state and the conditions on use."""
    async with running_bot(tmp_path) as bot:
        card = await open_request(
            bot, 'open ICC-01/14 to:spo measure:"hearing of W" measure:"bank records" Evidence')
        blocks = json.dumps(card["blocks"], ensure_ascii=False)
        assert "R-1/1 hearing of W: pending" in blocks and "R-1/2 bank records: pending" in blocks
        origin = bot.cards("C0ICC")[-1]
        status, _, _ = await bot.command(
            'answer R-1/1 Transcript sent conditions:"for use in ICC-01/14 only"',
            user="U0BOB", channel="C0SPO")
        assert status == 200

        async def partly() -> bool:
            return await bot.status(1) == "partly_answered"

        await bot.slack.wait_for(partly, 10)
        await bot.settled()
        for channel, ts in (("C0ICC", origin["ts"]), ("C0SPO", card["ts"])):
            updated = next(m for m in bot.slack.messages(channel) if m["ts"] == ts)
            text = json.dumps(updated["blocks"], ensure_ascii=False)
            assert "partly answered" in text
            assert "R-1/1 hearing of W: answered" in text
            assert "Conditions on use: for use in ICC-01/14 only" in text
            assert "R-1/2 bank records: pending" in text
            assert "Measures: 1 answered, 0 declined, 0 postponed, 1 pending" in text
        assert any(call.args.get("ts") == origin["ts"] for call in bot.slack.calls("chat.update"))
