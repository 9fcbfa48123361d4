"""Tests of the fake Slack server itself, driven by the real slack_sdk / slack_bolt clients."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
import pytest
import pytest_asyncio
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from .fake_slack import (
    FakeSlack,
    event_body,
    event_envelope,
    interaction_body,
    signed_headers,
    slash_command_body,
    slash_command_payload,
)

META = {"event_type": "liaison_post", "event_payload": {"request_id": "r-1"}}


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.base_url)


@pytest.mark.asyncio
async def test_post_update_delete_and_history_with_metadata(slack: FakeSlack, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0DEFAULT", "U0BOT", "B0BOT")

    first = await client.chat_postMessage(channel="C1", text="one", metadata=META)
    second = await client.chat_postMessage(channel="C1", text="two", blocks=[{"type": "divider"}])
    assert float(second["ts"]) > float(first["ts"])
    assert first["message"]["metadata"] == META and first["message"]["bot_id"] == "B0BOT"
    assert second["message"]["blocks"] == [{"type": "divider"}]

    await client.chat_update(channel="C1", ts=first["ts"], text="one (edited)")
    hist = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert [m["text"] for m in hist["messages"]] == ["two", "one (edited)"]  # newest first
    assert hist["messages"][1]["metadata"] == META
    plain = await client.conversations_history(channel="C1")
    assert all("metadata" not in m for m in plain["messages"])

    await client.chat_delete(channel="C1", ts=second["ts"])
    assert [m["text"] for m in slack.messages("C1")] == ["one (edited)"]
    with pytest.raises(SlackApiError) as err:
        await client.chat_update(channel="C1", ts=second["ts"], text="gone")
    assert err.value.response["error"] == "message_not_found"
    assert [c.method for c in slack.calls()][:3] == ["auth.test", "chat.postMessage", "chat.postMessage"]
    assert slack.calls("chat.postMessage")[0].args["metadata"] == META


@pytest.mark.asyncio
async def test_history_window_limit_cursor_and_threads(slack: FakeSlack, client: AsyncWebClient) -> None:
    ts = [(await client.chat_postMessage(channel="C1", text=f"m{i}"))["ts"] for i in range(5)]
    page = await client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["has_more"]
    nxt = await client.conversations_history(channel="C1", limit=2, cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in nxt["messages"]] == ["m2", "m1"]
    window = await client.conversations_history(channel="C1", oldest=ts[1], latest=ts[4])
    assert [m["text"] for m in window["messages"]] == ["m3", "m2"]  # bounds exclusive by default
    recent = await client.conversations_history(channel="C1", oldest=str(time.time() - 60))
    assert len(recent["messages"]) == 5  # ts follow the wall clock

    reply = await client.chat_postMessage(channel="C1", thread_ts=ts[0], text="reply", metadata=META)
    hist = await client.conversations_history(channel="C1", include_all_metadata=True)
    assert "reply" not in [m["text"] for m in hist["messages"]]  # replies are not in channel history
    assert hist["messages"][-1]["reply_count"] == 1
    replies = await client.conversations_replies(channel="C1", ts=ts[0], include_all_metadata=True)
    assert [m["text"] for m in replies["messages"]] == ["m0", "reply"]
    assert replies["messages"][1]["metadata"] == META and replies["messages"][1]["ts"] == reply["ts"]


@pytest.mark.asyncio
async def test_two_teams_with_distinct_tokens(slack: FakeSlack) -> None:
    slack.add_team("T2", "xoxb-two", "U2BOT", "B2BOT")
    one = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)
    two = AsyncWebClient(token="xoxb-two", base_url=slack.base_url)
    assert (await two.auth_test())["team_id"] == "T2"
    await one.chat_postMessage(channel="C1", text="from one")
    await two.chat_postMessage(channel="C1", text="from two")
    assert [m["text"] for m in (await two.conversations_history(channel="C1"))["messages"]] == ["from two"]
    assert [m["text"] for m in slack.messages("C1", team_id="T0DEFAULT")] == ["from one"]
    assert [c.team_id for c in slack.calls("chat.postMessage")] == ["T0DEFAULT", "T2"]
    with pytest.raises(SlackApiError) as err:
        await AsyncWebClient(token="xoxb-nope", base_url=slack.base_url).auth_test()
    assert err.value.response["error"] == "invalid_auth"


@pytest.mark.asyncio
async def test_rate_limit_answers_429_with_retry_after(slack: FakeSlack, client: AsyncWebClient) -> None:
    client.retry_handlers.clear()
    slack.rate_limit("chat.postMessage", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as err:
        await client.chat_postMessage(channel="C1", text="hi")
    assert err.value.response.status_code == 429
    assert err.value.response["error"] == "ratelimited"
    assert err.value.response.headers["Retry-After"] == "7"
    assert slack.messages("C1") == [] and slack.calls("chat.postMessage")[0].status == 429
    await client.chat_postMessage(channel="C1", text="hi")  # fault consumed
    assert len(slack.messages("C1")) == 1


@pytest.mark.asyncio
async def test_rate_limit_retry_handler_posts_exactly_once(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin_async_handlers.random, "random", lambda: 0.0)  # no jitter: waits exactly Retry-After
    client = AsyncWebClient(
        token="xoxb-test", base_url=slack.base_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    resp = await client.chat_postMessage(channel="C1", text="eventually")
    assert resp["ok"]
    calls = slack.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 200]
    assert calls[1].at - calls[0].at >= 1.0
    assert [m["text"] for m in slack.messages("C1")] == ["eventually"]


@pytest.mark.asyncio
async def test_fail_and_delay(slack: FakeSlack, client: AsyncWebClient) -> None:
    slack.fail("chat.postMessage", error="not_in_channel", times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="x")
        assert err.value.response["error"] == "not_in_channel"
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    slack.delay("auth.test", 0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2


@pytest.mark.asyncio
async def test_drop_after_apply_and_recovery_via_metadata(slack: FakeSlack, client: AsyncWebClient) -> None:
    # slack_sdk's DEFAULT retry handler retries on a dropped connection -> chat.postMessage is duplicated.
    slack.drop_after_apply("chat.postMessage")
    await client.chat_postMessage(channel="C1", text="dup", metadata=META)
    assert [m["text"] for m in slack.messages("C1")] == ["dup", "dup"]

    # Without retries the caller sees an error although the message exists; it must find it by metadata.
    bare = AsyncWebClient(token="xoxb-test", base_url=slack.base_url, retry_handlers=[])
    meta = {"event_type": "liaison_post", "event_payload": {"request_id": "r-2"}}
    for mode in ("disconnect", "500"):
        slack.drop_after_apply("chat.postMessage", mode=mode)  # type: ignore[arg-type]
        with pytest.raises((aiohttp.ClientError, SlackApiError)):
            await bare.chat_postMessage(channel="C2", text=mode, metadata=meta)
    hist = await bare.conversations_history(channel="C2", include_all_metadata=True, oldest=str(time.time() - 60))
    found = [m for m in hist["messages"] if m.get("metadata", {}).get("event_payload") == {"request_id": "r-2"}]
    assert [m["text"] for m in found] == ["500", "disconnect"]
    assert [c.status for c in slack.calls("chat.postMessage")][-2:] == [0, 500]


@pytest.mark.asyncio
async def test_other_methods(slack: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="x")
    link = await client.chat_getPermalink(channel="C1", message_ts=posted["ts"])
    assert link["permalink"].endswith("/archives/C1/p" + posted["ts"].replace(".", ""))
    eph = await client.chat_postEphemeral(channel="C1", user="U1", text="psst")
    assert eph["message_ts"] and slack.messages("C1")[-1]["text"] == "x"

    opened = await client.views_open(
        trigger_id="t1", view={"type": "modal", "title": {"type": "plain_text", "text": "A"}}
    )
    view_id = opened["view"]["id"]
    updated = await client.views_update(
        view_id=view_id, hash=opened["view"]["hash"], view={"type": "modal", "callback_id": "b"}
    )
    assert updated["view"]["callback_id"] == "b" and updated["view"]["id"] == view_id
    with pytest.raises(SlackApiError, match="hash_conflict"):
        await client.views_update(view_id=view_id, hash=opened["view"]["hash"], view={"type": "modal"})

    dm1 = await client.conversations_open(users="U1")
    dm2 = await client.conversations_open(users=["U1"])
    assert dm1["channel"]["id"] == dm2["channel"]["id"] and dm1["channel"]["id"].startswith("D")
    assert (await client.conversations_open(users="U2"))["channel"]["id"] != dm1["channel"]["id"]
    info = await client.conversations_info(channel="C1")
    assert info["channel"]["is_channel"] and not info["channel"]["is_im"]

    slack.add_user("T0DEFAULT", "U1", "alice", "Alice Liddell")
    user = await client.users_info(user="U1")
    assert user["user"]["real_name"] == "Alice Liddell" and user["user"]["profile"]["display_name"] == "alice"
    with pytest.raises(SlackApiError, match="user_not_found"):
        await client.users_info(user="U404")

    assert (await client.api_call("reactions.add", json={"channel": "C1", "name": "eyes"}))["ok"]
    assert slack.calls("reactions.add")[0].args == {"channel": "C1", "name": "eyes"}


@pytest.mark.asyncio
async def test_form_encoded_bodies_are_parsed(slack: FakeSlack, client: AsyncWebClient) -> None:
    data = {"channel": "C1", "text": "form", "blocks": json.dumps([{"type": "divider"}]), "metadata": json.dumps(META)}
    await client.api_call("chat.postMessage", data=data)
    msg = slack.messages("C1")[0]
    assert msg["blocks"] == [{"type": "divider"}] and msg["metadata"] == META


@pytest.mark.asyncio
async def test_response_url_and_wait_for(slack: FakeSlack) -> None:
    resp = await AsyncWebhookClient(slack.response_url("cmd1")).send(text="done", response_type="ephemeral")
    assert resp.status_code == 200
    (call,) = await slack.wait_for_call("response_url")
    assert call.args == {"name": "cmd1", "text": "done", "response_type": "ephemeral"}
    with pytest.raises(TimeoutError):
        await slack.wait_for(lambda: slack.calls("chat.postMessage"), timeout=0.05)


def test_signature_and_body_builders() -> None:
    body = slash_command_body(text="status please", user_id="U1", channel_id="C9", trigger_id="trg")
    headers = signed_headers("s3cret", body)
    assert SignatureVerifier("s3cret").is_valid_request(body, headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    old = signed_headers("s3cret", body, timestamp=int(time.time()) - 3600)
    assert not SignatureVerifier("s3cret").is_valid_request(body, old)  # stale timestamp rejected
    form = dict(parse_qsl(body.decode()))
    assert form["command"] == "/liaison" and form["text"] == "status please" and form["trigger_id"] == "trg"

    ev = json.loads(event_body({"type": "app_mention", "text": "hi"}, team_id="T2", event_id="Ev1"))
    assert ev["type"] == "event_callback" and ev["team_id"] == "T2" and ev["event_id"] == "Ev1"
    assert signed_headers("s", json.dumps(ev))["Content-Type"] == "application/json"
    payload = json.loads(dict(parse_qsl(interaction_body({"type": "block_actions"}).decode()))["payload"])
    assert payload == {"type": "block_actions"}


@pytest.mark.asyncio
async def test_socket_mode_round_trip_and_reconnect(slack: FakeSlack) -> None:
    slack.add_app_token("xapp-1")
    web = AsyncWebClient(base_url=slack.base_url)
    sm = SocketModeClient(app_token="xapp-1", web_client=web, auto_reconnect_enabled=True)
    received: list[SocketModeRequest] = []

    async def listener(client: SocketModeClient, req: SocketModeRequest) -> None:
        received.append(req)
        await client.send_socket_mode_response(SocketModeResponse(req.envelope_id, payload={"text": "ack!"}))

    sm.socket_mode_request_listeners.append(listener)  # type: ignore[arg-type]
    try:
        await sm.connect()
        ack = await slack.socket_request(
            "slash_commands", slash_command_payload(text="hi"), accepts_response_payload=True
        )
        assert ack["payload"] == {"text": "ack!"} and ack["envelope_id"] == received[0].envelope_id
        assert received[0].type == "slash_commands" and received[0].payload["text"] == "hi"
        assert slack.calls("socket_ack")[0].args == ack

        await slack.socket_disconnect()  # like Slack's periodic refresh
        await slack.wait_for(lambda: len(slack.calls("apps.connections.open")) == 2 and slack.socket_connections == 1)
        ack2 = await slack.socket_request("events_api", event_envelope({"type": "app_mention", "text": "yo"}))
        assert received[1].payload["event"]["text"] == "yo" and ack2["envelope_id"] == received[1].envelope_id
    finally:
        await sm.close()

    with pytest.raises(SlackApiError, match="invalid_auth"):
        await AsyncWebClient(base_url=slack.base_url).apps_connections_open(app_token="xapp-unknown")
    with pytest.raises(SlackApiError, match="not_allowed_token_type"):
        await AsyncWebClient(base_url=slack.base_url).apps_connections_open(app_token="xoxb-test")


@pytest.mark.asyncio
async def test_bolt_app_over_socket_mode_and_http(slack: FakeSlack) -> None:
    slack.add_app_token("xapp-1")
    app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=slack.base_url), signing_secret="s3cret")

    @app.command("/liaison")
    async def on_command(ack, say, respond, command) -> None:  # type: ignore[no-untyped-def]
        await ack(f"got {command['text']}")
        await say(f"said {command['text']}")
        await respond("responded")

    handler = AsyncSocketModeHandler(app, "xapp-1")
    try:
        await handler.connect_async()
        payload = slash_command_payload(text="ping", response_url=slack.response_url("r1"))
        ack = await slack.socket_request("slash_commands", payload, accepts_response_payload=True)
        assert ack["payload"]["text"] == "got ping"
        await slack.wait_for(lambda: slack.messages("C0CHAN") and slack.calls("response_url"))
        assert slack.messages("C0CHAN")[0]["text"] == "said ping"
        assert slack.calls("auth.test")  # Bolt authorizes lazily with auth.test on first request
    finally:
        await handler.close_async()

    body = slash_command_body(text="http", response_url=slack.response_url("r2"))
    resp = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=signed_headers("s3cret", body)))
    assert resp.status == 200 and "got http" in resp.body
    bad = await app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=signed_headers("wrong", body)))
    assert bad.status == 401
    await slack.wait_for(lambda: len(slack.messages("C0CHAN")) == 2)
