"""Posts/s delivered by the outbox worker to the fake Slack, beside a floor of bare posts.

    .venv/bin/python benchmarks/bench_outbox.py [--n 2000] [--rooms 10]

N notes are queued at once into ROOMS Slack channels (a backlog after an outage) and the real
worker (``OutboxWorker`` with the real ``SlackGateway`` and slack_sdk, SQLite, as
``liaisonbot run`` wires them, pacing off) delivers them to ``tests/support/fake_slack.py``;
the figure is posts/s from the queueing to the last confirmed post, with the rounds the worker
took. Floor: the same N ``chat.postMessage`` calls through slack_sdk to the same server, rooms
in parallel and each room's posts one after the other (what per-room order allows), with no
database at all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from liaisonbot.domain.cards import Post  # noqa: E402
from liaisonbot.service.ports import OutboxDraft  # noqa: E402
from support.fake_slack import FakeSlack  # noqa: E402
from test_slack_harness import running_bot  # noqa: E402


async def floor(slack: FakeSlack, rooms: list[str], n: int) -> float:
    client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url)

    async def room(channel: str, count: int) -> None:
        for i in range(count):
            await client.chat_postMessage(channel=channel, text=f"floor {i}")

    began = time.perf_counter()
    await asyncio.gather(*(room(r.split(":", 1)[1], n // len(rooms)) for r in rooms))
    return time.perf_counter() - began


async def worker_run(n: int, room_count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with running_bot(Path(tmp)) as bot:
            rooms = [f"slack:C0R{i:03d}" for i in range(room_count)]
            floor_s = await floor(bot.slack, rooms, n)
            worker = bot.core.outbox
            rounds = 0
            original = worker._claim

            async def counted() -> list:  # type: ignore[type-arg]
                nonlocal rounds
                items = await original()
                rounds += bool(items)
                return items

            worker._claim = counted  # type: ignore[method-assign]
            now = bot.core.clock.now()
            began = time.perf_counter()
            async with bot.core.uow() as uow:
                await uow.outbox.add_many([
                    OutboxDraft(platform="slack", room=rooms[i % room_count],
                                post=Post(kind="note", text=f"post {i}"), request_id=None,
                                at=now) for i in range(n)])
                await uow.commit()
            worker.wake()
            while True:
                async with bot.core.uow() as uow:
                    if await uow.outbox.backlog() == 0:
                        break
                await asyncio.sleep(0.01)
            took = time.perf_counter() - began
    return {"posts": n, "rooms": room_count, "seconds": took, "posts_per_s": n / took,
            "rounds": rounds, "floor_seconds": floor_s, "floor_posts_per_s": n / floor_s,
            "x_floor": took / floor_s}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rooms", type=int, default=10)
    args = parser.parse_args()
    result = await worker_run(args.n, args.rooms)
    print(f"\n-- {result['posts']:,} posts into {result['rooms']} Slack channels (SQLite, "
          "fake Slack)\n")
    print(f"worker   {result['posts_per_s']:8,.0f} posts/s  {result['seconds']:6.2f} s  "
          f"{result['rounds']:,} rounds")
    print(f"floor    {result['floor_posts_per_s']:8,.0f} posts/s  "
          f"{result['floor_seconds']:6.2f} s  (bare chat.postMessage, no database)")
    print(f"ratio    {result['x_floor']:.2f}× the floor's time")
    out = ROOT / "benchmarks" / "results-outbox.json"
    out.write_text(json.dumps(result, sort_keys=True) + "\n")
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    asyncio.run(main())
