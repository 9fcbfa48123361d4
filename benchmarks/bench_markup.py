"""The relay markup parser's cost per character at 100, 1,000 and 8,000 characters.

Each input is rendered to Matrix HTML and Slack mrkdwn (``to_html`` + ``to_mrkdwn``, which
parse it once each); per-character cost is the best of ``--repeat`` runs divided by the length.
Inputs: ordinary relay text, and pathological lines (many unmatched ``*``/``_``, unclosed
fences, URL look-alikes). Floor: ``clean`` + ``html.escape`` of the same text (one linear
pass). Linear means the 8,000/100 ratio of per-character cost stays near 1.

    .venv/bin/python benchmarks/bench_markup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import html
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import finish, table  # noqa: E402

from liaisonbot.chat.formatting import clean, to_html, to_mrkdwn  # noqa: E402

SIZES = (100, 1_000, 8_000)
INPUTS = {
    "ordinary": "We found *two* accounts at _Bank X_; see https://example.org/case/7 and "
                "`ref-42`.\n- first item\n- second item\n",
    "unmatched *": "*a ",
    "unmatched * and _": "*a _b ",
    "unclosed fences": "```a\n",
    "URL look-alikes": "ahttp://x)",
}


def best(work: Callable[[], object], repeat: int, *, collect: bool) -> float:
    """Best of ``repeat`` runs; ``collect=False`` times the parser's own work with the
    cyclic garbage collector paused (its passes cost in proportion to every object the
    process holds, not to this text)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        if not collect:
            gc.disable()
        started = time.perf_counter()
        try:
            work()
        finally:
            times.append(time.perf_counter() - started)
            gc.enable()
    return min(times)


def main(repeat: int) -> None:
    rows = []
    results: dict[str, object] = {"repeat": repeat}
    gc.collect()
    for name, pattern in INPUTS.items():
        per_char = {}
        for size in SIZES:
            text = (pattern * (size // len(pattern) + 1))[:size]
            def render(t: str = text) -> object:
                return to_html(t), to_mrkdwn(t)

            parser = best(render, repeat, collect=False)
            with_gc = best(render, repeat, collect=True)
            floor = best(lambda t=text: html.escape(clean(t)), repeat, collect=False)
            per_char[size] = parser / size
            rows.append((name, size, parser * 1e3, parser / size * 1e9,
                         with_gc / size * 1e9, floor / size * 1e9, parser / floor))
        ratio = per_char[SIZES[-1]] / per_char[SIZES[0]]
        rows.append((name, "8000/100", "", f"ratio {ratio:.2f}", "", "", ""))
        results[name] = {"ns_per_char": {str(k): round(v * 1e9, 1) for k, v in per_char.items()},
                         "ratio_8000_100": round(ratio, 2)}
    table(rows, ("input", "chars", "ms", "ns/char", "ns/char (gc on)", "floor ns/char",
                 "× floor"))
    finish("markup", results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    main(parser.parse_args().repeat)
