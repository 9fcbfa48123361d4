"""``liaisonbot console``: stdin lines in, the bot's posts out, a clock you move by hand."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from liaisonbot.bootstrap import Core
from liaisonbot.domain.durations import parse_duration
from liaisonbot.domain.refs import is_room_ref, is_user_ref, parse_request_id
from liaisonbot.service.desk import Actor
from liaisonbot.service.ports import ManualClock

PREFIX = "!liaison"
HELP = """Console lines:
  !liaison COMMAND…      a chat command, by the current user in the current room
  R-7: TEXT              a message in R-7's thread in the current room (relayed)
  :as USER  :in ROOM     change user (console:alice, matrix:@a:b…) or room (ref or office slug)
  :thread R-7 | :thread  type plain lines into R-7's thread / back to the room
  :now ISO  :advance 3d  set the clock / move it, running every job due on the way
  :where                 show user, room, thread and clock"""


class Console:
    """One console session over a wired core whose gateways print through ``write``."""

    def __init__(self, core: Core, clock: ManualClock, *, user: str, room: str,
                 write: Callable[[str], None]) -> None:
        self.core = core
        self.clock = clock
        self.user = user
        self.room = room
        self.thread: int | None = None
        self.write = write

    async def settle(self) -> None:
        """Run what is due at the current time: follow-ups, then every delivery."""
        await self.core.ticker.tick()
        await self.core.outbox.drain()

    async def line(self, text: str) -> None:
        text = text.rstrip("\n")
        stripped = text.strip()
        if not stripped:
            return
        if stripped.startswith(":"):
            self._meta(stripped)
            if stripped.split()[0] in (":now", ":advance"):
                await self._clock(stripped)
            return
        if stripped.split()[0].lower() == PREFIX:
            actor = Actor(self.user, self.room, thread_root=await self._thread_root(self.thread))
            await self.core.desk.handle_command(actor, stripped[len(PREFIX):].strip())
        else:
            await self._chat(stripped)
        await self.settle()

    async def _chat(self, text: str) -> None:
        head, sep, rest = text.partition(":")
        number = parse_request_id(head) if sep and head.strip().upper().startswith("R-") else None
        thread, body = (number, rest.strip()) if number else (self.thread, text)
        if thread is None:
            return  # plain chat in the room: nothing for the desk
        root = await self._thread_root(thread)
        if root is None:
            self.write(f"# R-{thread} has no thread in {self.room}.")
            return
        await self.core.desk.relay(Actor(self.user, self.room, thread_root=root), body)

    async def _thread_root(self, number: int | None) -> str | None:
        if number is None:
            return None
        async with self.core.uow() as uow:
            for link in await uow.threads.for_request(number):
                if link.room == self.core.desk._room_key(self.room):
                    return link.thread_root
        return None

    def _meta(self, text: str) -> None:
        verb, _, arg = text.partition(" ")
        arg = arg.strip()
        if verb == ":as" and arg:
            user = arg if ":" in arg else f"console:{arg}"
            if not is_user_ref(user):
                self.write(f"# {arg!r} is not a user like console:alice or matrix:@a:example.org.")
                return
            self.user = user
        elif verb == ":in" and arg:
            office = self.core.settings.directory.office(arg)
            room = office.rooms[0] if office else arg
            if not is_room_ref(room):
                self.write(f"# {arg!r} is neither an office slug nor a room like console:name.")
                return
            self.room, self.thread = room, None
        elif verb == ":thread":
            self.thread = parse_request_id(arg) if arg else None
        elif verb in (":now", ":advance"):
            return
        elif verb != ":where":
            self.write(HELP)
            return
        self.write(f"# {self.user} in {self.room}"
                   + (f", thread R-{self.thread}" if self.thread else "")
                   + f", {self.clock.now().isoformat(timespec='minutes')}")

    async def _clock(self, text: str) -> None:
        verb, _, arg = text.partition(" ")
        try:
            if verb == ":now":
                moment = datetime.fromisoformat(arg.strip())
                target = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
            else:
                target = self.clock.now() + parse_duration(arg.strip(),
                                                           units=("m", "h", "d", "w")).as_timedelta()
        except ValueError:
            self.write(f"# {verb} needs {'an ISO time like 2026-12-01T09:00+01:00' if verb == ':now' else 'a duration like 90m, 6h, 3d or 2w'}.")
            return
        if target < self.clock.now():
            self.clock.set(target)
        else:
            await self.advance_to(target)
        self.write(f"# clock {self.clock.now().isoformat(timespec='minutes')}")

    async def advance_to(self, target: datetime) -> None:
        """Move the clock to ``target``, running each job at its own time, in order."""
        await self.settle()
        while (moment := await self.core.ticker.next_due(self.clock.now())) and moment <= target:
            self.clock.set(moment)
            await self.settle()
        self.clock.set(target)
        await self.settle()


async def run_console(core: Core, clock: ManualClock, *, user: str, room: str) -> None:
    def write(text: str) -> None:
        print(text, flush=True)

    console = Console(core, clock, user=user, room=room, write=write)
    loop = asyncio.get_running_loop()
    await console.settle()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        await console.line(line)
