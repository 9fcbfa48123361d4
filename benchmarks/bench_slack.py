"""Slash-command ack latency: liaisonbot's real ``POST /slack/events`` vs a bare Bolt app.

50 concurrent signed ``/liaison list CASE`` requests (and a round of ``open``) against each
endpoint, FakeSlack behind both, same process, same run. Prints p50/p99 and the ratio.

    .venv/bin/python benchmarks/bench_slack.py [--n 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))  # this checkout's code, whatever is installed

from support.fake_slack import FakeSlack, signed_headers, slash_command_body  # noqa: E402
from test_slack_harness import SECRET, running_bot  # noqa: E402


async def bare_bolt(slack: FakeSlack) -> tuple[web.AppRunner, str]:
    app = AsyncApp(client=AsyncWebClient(token="xoxb-test", base_url=slack.base_url),
                   signing_secret=SECRET)

    @app.command("/liaison")
    async def only_ack(ack):  # type: ignore[no-untyped-def]
        await ack()

    from slack_bolt.request.async_request import AsyncBoltRequest

    async def handle(request: web.Request) -> web.Response:
        bolt = AsyncBoltRequest(body=await request.text(), query=request.query_string,
                                headers=dict(request.headers.items()))
        response = await app.async_dispatch(bolt)
        return web.Response(status=response.status, body=response.body,
                            headers=response.first_headers())

    web_app = web.Application()
    web_app.router.add_post("/slack/events", handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"


async def burst(http: aiohttp.ClientSession, url: str, texts: list[str], slack: FakeSlack
                ) -> list[float]:
    async def one(i: int, text: str) -> float:
        body = slash_command_body(text=text, channel_id="C0ICC", user_id=f"U0B{i:04d}",
                                  response_url=slack.response_url("bench"))
        started = time.perf_counter()
        async with http.post(url, data=body, headers=signed_headers(SECRET, body)) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return (time.perf_counter() - started) * 1000

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(texts))))


def summary(name: str, samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{name:<28} n={len(ordered):4d}  p50={p50:7.2f} ms  p99={p99:7.2f} ms")
    return p50, p99


async def main(n: int, rounds: int) -> dict[str, Any]:
    async with FakeSlack() as slack:
        runner, bare_url = await bare_bolt(slack)
        with tempfile.TemporaryDirectory() as tmp:
            async with running_bot(Path(tmp), slack=slack) as bot:
                async with aiohttp.ClientSession() as http:
                    # warm both up with a full burst (connections, first-call paths)
                    await burst(http, bot.url, ["help"] * n, slack)
                    await bot.settled(120)
                    await burst(http, bare_url, ["help"] * n, slack)
                    await bot.settled(120)
                    ours: list[float] = []
                    bare: list[float] = []
                    for r in range(rounds):
                        texts = ([f"open B-{r}-{i} to:spo Bench {i}" for i in range(n)]
                                 if r == 0 else [f"list B-0-{i}" for i in range(n)])
                        # Each burst alone on the loop: the bare app's floor is not slowed by
                        # the bot's leftover work; the bot's acks share the loop with the work
                        # its own burst started (the desk, the replies, the outbox's posts).
                        # Who goes first alternates.
                        got: dict[str, list[float]] = {}
                        for who in (("bare", "ours") if r % 2 else ("ours", "bare")):
                            # a full collection of what the last burst left lands before the
                            # burst, not inside whichever burst comes next (bare or ours)
                            gc.collect()
                            if who == "ours":
                                got[who] = await burst(http, bot.url, texts, slack)
                                await bot.settled(120)
                            else:
                                got[who] = await burst(http, bare_url, texts, slack)
                        ours += got["ours"]
                        bare += got["bare"]
                        print(f"round {r + 1}: p99 ours {max(got['ours']):7.2f} ms, "
                              f"bare {max(got['bare']):7.2f} ms (max of {n})")
        await runner.cleanup()
    print(f"{n} concurrent signed slash commands x {rounds} rounds (round 1: open, then list)")
    o50, o99 = summary("liaisonbot /slack/events", ours)
    b50, b99 = summary("bare Bolt AsyncApp (ack)", bare)
    print(f"ratio liaisonbot/bare: p50 x{o50 / b50:.2f}  p99 x{o99 / b99:.2f}")
    return {"n": n, "rounds": rounds, "ours_p50_ms": o50, "ours_p99_ms": o99,
            "bare_p50_ms": b50, "bare_p99_ms": b99, "ratio_p50": o50 / b50,
            "ratio_p99": o99 / b99}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(main(args.n, args.rounds))
    print(json.dumps({"bench": "slack", **result}))
