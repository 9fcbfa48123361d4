
"""Thread relay latency across platforms (one core, FakeSlack + a real Synapse), beside floors.

    .venv/bin/python benchmarks/bench_relay.py [N]        (default N = 200)

- Slack → Matrix: a signed Events API message in a card's Slack thread is POSTed to the bot;
  the clock stops when the Matrix partner sees the relayed notice in its /sync.
- Matrix → Slack: the partner sends in the card's Matrix thread; the clock stops when the
  relayed message is stored by the fake Slack Web API.
- Floors, measured in the same run: a plain nio client posting to Synapse and seeing its own
  event via /sync; a plain ``slack_sdk`` ``chat.postMessage`` to the fake.

The ratio says what the bot adds: Bolt's dispatch, the desk's SQL transaction (inbound mark,
history entry, outbox rows), the outbox worker's lease + delivery + done mark, and for
Matrix → Slack the bot's own /sync to hear the message first.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from slack_sdk.web.async_client import AsyncWebClient

from support.synapse import SynapseServer, own_echo_latency
from test_bridge_helpers import make_world, notice_in_thread, running_bridge, slack_message


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _row(name: str, values: list[float]) -> None:
    print(f"{name:26} n={len(values)} p50={_pct(values, .5) * 1000:7.1f} ms "
          f"p99={_pct(values, .99) * 1000:7.1f} ms mean={statistics.mean(values) * 1000:7.1f} ms")


async def _slack_floor(base_url: str, n: int) -> list[float]:
    client = AsyncWebClient(token="xoxb-test", base_url=base_url)
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await client.chat_postMessage(channel="C0FLOOR", text=f"floor {i}")
        out.append(time.perf_counter() - t0)
    return out


async def bench(server: SynapseServer, n: int) -> None:
    world = await make_world(server, Path(tempfile.mkdtemp(prefix="bench-relay-")))
    await server.override_ratelimit(world.bojan.user_id)
    bojan, room, fake = world.bojan, world.room, world.slack
    try:
        floor_room = await bojan.create_room("floor", encrypted=False)
        matrix_floor = await own_echo_latency(bojan, floor_room, n)
        slack_floor = await _slack_floor(fake.base_url, n)
        async with running_bridge(world, poll_ms=30_000) as bridge:
            slack = bridge.slack
            await slack.command("open OP-1 to:ba-spo Bench")
            card = await bojan.wait_for_message(room, lambda e: "R-1" in e.body, 30)
            await fake.wait_for(lambda: slack.cards("C0ICC"), 10)
            root = slack.cards("C0ICC")[0]["ts"]
            await slack.settled()
            to_matrix: list[float] = []
            for i in range(n):
                t0 = time.perf_counter()
                await slack.event(slack_message(f"s2m {i} *x*", root), event_id=f"EvB{i}")
                await bojan.wait_for_message(room, notice_in_thread(card.event_id,
                                                                    f"s2m {i} "), 30)
                to_matrix.append(time.perf_counter() - t0)
            to_slack: list[float] = []
            for i in range(n):
                needle = f"m2s {i} "
                t0 = time.perf_counter()
                await bojan.send_text(room, f"m2s {i} x", thread_root=card.event_id)
                await fake.wait_for(lambda needle=needle: any(
                    needle in m["text"] for m in fake.messages("C0ICC")[-3:]), 30)
                to_slack.append(time.perf_counter() - t0)
        _row("floor Matrix (own echo)", matrix_floor)
        _row("floor Slack (postMessage)", slack_floor)
        _row("relay Slack → Matrix", to_matrix)
        _row("relay Matrix → Slack", to_slack)
        for name, values in (("Slack → Matrix", to_matrix), ("Matrix → Slack", to_slack)):
            p50 = _pct(values, .5) / (_pct(matrix_floor, .5) + _pct(slack_floor, .5))
            p99 = _pct(values, .99) / (_pct(matrix_floor, .99) + _pct(slack_floor, .99))
            print(f"ratio {name} / (Matrix floor + Slack floor): p50 {p50:.1f}x, p99 {p99:.1f}x")
    finally:
        await bojan.close()
        await fake.stop()


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with SynapseServer() as server:
        asyncio.run(bench(server, n))


if __name__ == "__main__":
    main()
