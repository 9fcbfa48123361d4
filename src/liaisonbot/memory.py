"""Resident memory of a long-running bot on glibc: fewer malloc arenas, freed pages returned.

Every SQLite connection (aiosqlite) and the migration step run in threads of their own, and
glibc gives each thread its own malloc arena (up to 8 per core). Rows fetched and freed in those
threads leave free but resident pages in every arena, so resident memory grows with the
number of threads that ever touched a big result, not with what the process keeps. Measured
with ``benchmarks/bench_memory.py`` (1,000 rooms, a day of traffic): 168 MB peak by default,
150 MB with two arenas.

* :func:`limit_malloc_arenas` (``liaisonbot run``, before any thread starts): two arenas,
  unless ``MALLOC_ARENA_MAX`` is set in the environment (the operator's choice wins).
* :func:`release_free_memory` (after each follow-up tick): ``malloc_trim(0)`` hands free pages
  back to the system (a few milliseconds).

Both do nothing where there is no glibc (musl, macOS, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache
from typing import Any

#: ``mallopt`` parameter number of M_ARENA_MAX in glibc's malloc.h.
M_ARENA_MAX = -8
ARENAS = 2


@cache
def _libc() -> Any | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None  # not glibc
    return libc


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas for this process; True when applied."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def release_free_memory() -> bool:
    """Return free heap pages to the system; True when some were."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)
