"""Acks first: the work after a Slack acknowledgement never delays the next acknowledgement.

Slack gives an HTTP request 3 s to be acknowledged; the work it asks for (the desk's
transaction, the ephemeral reply, the outbox's posts) has minutes. Both share one event loop,
so :class:`AckFirst` orders them:

* ``handle_http`` counts the requests being acknowledged (``acking``);
* work after an ack enters a bounded *lane* (``lanes`` runs at once, the others wait their turn
  in arrival order), and before it starts it waits until no acknowledgement is pending and none
  has finished for ``settle`` seconds (requests come in bursts: the next one of a burst is
  usually a few milliseconds behind) — at most ``max_wait`` seconds, so a steady stream of
  requests slows the work but never starves it;
* the Slack gateway waits the same way before each post.

A burst of 50 signed commands is therefore acknowledged before (and while only a few of) their
50 desk transactions run, instead of each ack queueing behind every ready step of the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: Work after an ack running at once (each holds at most one database transaction).
LANES = 4
#: The longest a piece of work yields to pending acknowledgements before it runs anyway.
MAX_WAIT = 0.25
#: How long after the last acknowledgement the work still waits for the next of a burst.
SETTLE = 0.02


class AckFirst:
    """The acknowledgement counter and the lanes work after an ack runs in."""

    def __init__(self, lanes: int = LANES, max_wait: float = MAX_WAIT,
                 settle: float = SETTLE) -> None:
        self.max_wait = max_wait
        self.settle = settle
        self.acking = 0
        self._last_ack = 0.0
        self._idle = asyncio.Event()
        self._idle.set()
        self._lanes = asyncio.Semaphore(lanes)

    def ack_started(self) -> None:
        self.acking += 1
        self._idle.clear()

    def ack_done(self) -> None:
        self.acking = max(0, self.acking - 1)
        self._last_ack = asyncio.get_running_loop().time()
        if not self.acking:
            self._idle.set()

    async def quiet(self) -> None:
        """Return once no acknowledgement is pending and none finished in the last
        ``settle`` seconds (or after ``max_wait``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while loop.time() < deadline:
            if self.acking:
                try:
                    await asyncio.wait_for(self._idle.wait(), deadline - loop.time())
                except TimeoutError:
                    return
                continue
            calm = self._last_ack + self.settle - loop.time()
            if calm <= 0:
                return
            await asyncio.sleep(min(calm, deadline - loop.time()))

    @asynccontextmanager
    async def lane(self) -> AsyncIterator[None]:
        """Run the block as work after an ack: bounded, and behind pending acks."""
        async with self._lanes:
            await self.quiet()
            yield
