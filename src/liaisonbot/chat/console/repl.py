"""``liaisonbot console``: stdin lines in, the bot's posts out, a clock you move by hand."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from liaisonbot.bootstrap import Core
from liaisonbot.domain.durations import parse_duration
from liaisonbot.domain.refs import is_room_ref, is_user_ref, parse_request_id
from liaisonbot.domain.text import echo, valid_text
from liaisonbot.service import messages as m
from liaisonbot.service.desk import Actor
from liaisonbot.service.ports import ManualClock

log = logging.getLogger(__name__)
PREFIX = "!liaison"
#: The console's clock stays within these years (calendars count days past either end) and
#: moves at most ``MAX_JUMP`` at a time: every job due on the way runs, so a jump of centuries
#: would run for hours.
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
MAX_JUMP = timedelta(days=400)
HELP = """Console lines:
  !liaison COMMAND…      a chat command, by the current user in the current room
  R-7: TEXT              a message in R-7's thread in the current room (relayed)
  :as USER  :in ROOM     change user (console:alice, matrix:@a:b…) or room (ref or office slug)
  :thread R-7 | :thread  type plain lines into R-7's thread / back to the room
  :now ISO  :advance 3d  set the clock / move it, running every job due on the way
  :where                 show user, room, thread and clock"""


def parse_clock(text: str) -> datetime | str:
    """An ISO time for the console's clock (naive means UTC), or the sentence refusing it."""
    try:
        moment = datetime.fromisoformat(text.strip())
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        inside = EARLIEST <= moment < LATEST
    except (ValueError, OverflowError):
        return m.CONSOLE_BAD_NOW
    if not inside:
        return m.CONSOLE_CLOCK_RANGE.format(low=EARLIEST.date(), high=LATEST.date(),
                                            value=echo(text.strip()))
    return moment


def _split(text: str) -> tuple[str, str]:
    """``:verb argument`` split at any whitespace (a tab too)."""
    parts = text.split(maxsplit=1)
    return parts[0], parts[1].strip() if len(parts) > 1 else ""


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
        stripped = valid_text(text).strip()  # meta arguments too: the console is an edge
        if not stripped:
            return
        if stripped.startswith(":"):
            verb, arg = _split(stripped)
            if verb in (":now", ":advance"):
                await self._clock(verb, arg)
            else:
                self._meta(verb, arg)
            return
        if stripped.split()[0].lower() == PREFIX:
            actor = Actor(self.user, self.room, thread_root=await self._thread_root(self.thread))
            await self.core.desk.handle_command(actor, stripped[len(PREFIX):].strip())
        elif not await self._chat(stripped):
            return  # plain chat outside any thread: nothing changed, nothing to run
        await self.settle()

    async def _chat(self, text: str) -> bool:
        """A plain line: relayed when it is in a thread. False when the desk was not asked."""
        head, sep, rest = text.partition(":")
        number = parse_request_id(head) if sep and head.strip().upper().startswith("R-") else None
        thread, body = (number, rest.strip()) if number else (self.thread, text)
        if thread is None:
            return False  # plain chat in the room: nothing for the desk
        root = await self._thread_root(thread)
        if root is None:
            self.write("# " + m.CONSOLE_NO_THREAD.format(number=thread, room=self.room))
            return False
        await self.core.desk.relay(Actor(self.user, self.room, thread_root=root), body)
        return True

    async def _thread_root(self, number: int | None) -> str | None:
        if number is None:
            return None
        async with self.core.uow() as uow:
            for link in await uow.threads.for_request(number):
                if link.room == self.core.desk._room_key(self.room):
                    return link.thread_root
        return None

    def _meta(self, verb: str, arg: str) -> None:
        if verb in (":as", ":in") and not arg:
            self.write("# " + (m.CONSOLE_NO_USER.format(verb=verb) if verb == ":as"
                               else m.CONSOLE_NO_ROOM))
            return
        if verb == ":as":
            user = arg if ":" in arg else f"console:{arg}"
            if not is_user_ref(user):
                self.write("# " + m.CONSOLE_BAD_USER.format(arg=echo(arg)))
                return
            self.user = user
        elif verb == ":in":
            office = self.core.settings.directory.office(arg)
            room = office.rooms[0] if office else arg
            if not is_room_ref(room):
                self.write("# " + m.CONSOLE_BAD_ROOM.format(arg=echo(arg)))
                return
            self.room, self.thread = room, None
        elif verb == ":thread":
            number = parse_request_id(arg) if arg else None
            if arg and number is None:
                self.write("# " + m.CONSOLE_BAD_THREAD.format(arg=echo(arg)))
                return
            self.thread = number
        elif verb != ":where":
            self.write(HELP)
            return
        self.write(f"# {self.user} in {self.room}"
                   + (f", thread R-{self.thread}" if self.thread else "")
                   + f", {self.clock.now().isoformat(timespec='minutes')}")

    async def _clock(self, verb: str, arg: str) -> None:
        now = self.clock.now()
        if verb == ":now":
            target = parse_clock(arg)
            if isinstance(target, str):
                self.write("# " + target)
                return
        else:
            try:
                step = parse_duration(arg, units=("m", "h", "d", "w")).as_timedelta()
            except ValueError:
                self.write("# " + m.CONSOLE_BAD_ADVANCE)
                return
            if step > MAX_JUMP or now + step >= LATEST:
                self.write("# " + m.CONSOLE_JUMP.format(days=MAX_JUMP.days, value=echo(arg)))
                return
            target = now + step
        if abs(target - now) > MAX_JUMP:
            self.write("# " + m.CONSOLE_JUMP.format(days=MAX_JUMP.days, value=echo(arg)))
            return
        if target < now:
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


def read_line(stream: BinaryIO) -> str | None:
    """One line of ``stream`` as text (invalid UTF-8 becomes U+FFFD), None at EOF."""
    raw = stream.readline()
    return raw.decode("utf-8", errors="replace") if raw else None


async def run_console(core: Core, clock: ManualClock, *, user: str, room: str,
                      stream: BinaryIO | None = None) -> None:
    def write(text: str) -> None:
        print(text, flush=True)

    console = Console(core, clock, user=user, room=room, write=write)
    source = stream or sys.stdin.buffer
    loop = asyncio.get_running_loop()
    await console.settle()
    while True:
        line = await loop.run_in_executor(None, read_line, source)
        if line is None:
            return
        try:
            await console.line(line)
        except Exception:  # the console is a platform: one line never ends it
            log.exception("console line failed")
            write("# " + m.INTERNAL_ERROR)
