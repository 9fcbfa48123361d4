
"""Command → reply latency of the Matrix platform on a real Synapse, beside the floor.

    .venv/bin/python benchmarks/bench_matrix.py [N] [--encrypted]

``--encrypted``: both rooms encrypted, the partner cross-signed and the bot sharing keys only
with cross-signed devices (the default ``exclude_insecure_devices``), so the reply pays for
the device-trust check and Megolm on both sides, as the floor pays for Megolm.

The floor is a plain client's own-echo latency (send, see it in its own /sync) in the same
run; the ratio says how much the bot adds (one /sync to hear the command, the desk's SQL
transaction, the outbox, one send, one /sync for the partner to see the reply).
"""


from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.synapse import PartnerClient, SynapseServer, own_echo_latency
from test_matrix_helpers import office, register_bot, running_bot, settings_for


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(server: SynapseServer, n: int, encrypted: bool = False) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-matrix-"))
    bot = await register_bot(server)
    user = await server.register("bench-alice")
    await server.override_ratelimit(user.user_id)
    alice = await PartnerClient.login(server, user, tmp / "alice", encrypted=encrypted)
    if encrypted:
        from liaisonbot.chat.matrix.crosssigning import CrossSigning

        await CrossSigning(alice.client, data_dir=str(tmp / "alice-keys"),
                           pickle_key="bench").ensure()
    room = await alice.create_room("bench", encrypted=encrypted, invite=[bot.user_id])
    floor_room = await alice.create_room("floor", encrypted=encrypted)
    settings = settings_for(server, bot, tmp, offices=[office("icc", room, [user.user_id])],
                            exclude_insecure_devices=encrypted)
    try:
        floor = await own_echo_latency(alice, floor_room, n)
        async with running_bot(settings, bot, poll_ms=30_000) as running:
            while room not in running.platform.client.rooms:
                await asyncio.sleep(0.05)
            alice.clear_inbox()
            lat: list[float] = []
            for i in range(n):
                t0 = time.perf_counter()
                await alice.send_text(room, f"!liaison list CASE-{i}")
                await alice.wait_for_message(
                    room, lambda e, i=i: e.sender == bot.user_id and f"CASE-{i}" in e.body, 30)
                lat.append(time.perf_counter() - t0)
        for name, values in (("floor (own echo)", floor), ("command → reply", lat)):
            print(f"{name:18} n={len(values)} p50={_pct(values, .5) * 1000:7.1f} ms "
                  f"p99={_pct(values, .99) * 1000:7.1f} ms "
                  f"mean={statistics.mean(values) * 1000:7.1f} ms")
        print(f"ratio p50 {_pct(lat, .5) / _pct(floor, .5):.1f}x, "
              f"p99 {_pct(lat, .99) / _pct(floor, .99):.1f}x")
    finally:
        await alice.close()


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 200
    with SynapseServer() as server:
        asyncio.run(bench(server, n, encrypted="--encrypted" in sys.argv[1:]))


if __name__ == "__main__":
    main()
