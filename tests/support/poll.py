"""One polling helper for the tests that wait on real servers (Synapse, the fake Slack, SQL).

``await eventually(check)`` calls ``check`` (plain or async) until it returns something truthy
and returns that; past ``timeout`` it raises ``TimeoutError`` naming what it waited for. It
polls: it never sleeps a fixed time and then asserts, so a test waits exactly as long as the
thing it waits for takes (and no longer than the timeout).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = ...,
                     interval: float = ..., what: str = ...) -> T: ...


@overload
async def eventually(check: Callable[[], T], *, timeout: float = ..., interval: float = ...,
                     what: str = ...) -> T: ...


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0,
                     interval: float = 0.05, what: str = "") -> Any:
    """The first truthy value of ``check()``; ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            name = what or getattr(check, "__name__", "condition")
            raise TimeoutError(f"{name} not met within {timeout}s")
        await asyncio.sleep(interval)
