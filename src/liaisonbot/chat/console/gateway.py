"""The console gateway: "posts" by printing one block per post, tagged with its room."""

from __future__ import annotations

from collections.abc import Callable

from liaisonbot.chat.render import plain_lines
from liaisonbot.domain.text import printable_lines
from liaisonbot.service.ports import Delivery, Receipt


class ConsoleGateway:
    """Prints posts for any platform (the console stands in for Slack and Matrix alike).

    A block starts with ``[ROOM] `` and the post's first line; thread posts carry the request
    id (``[R-7 thread]``); direct messages to a user print as ``[dm:USER]``. Every line after
    the first is indented, so nothing inside a post can pass for the start of another.
    """

    def __init__(self, platform: str, write: Callable[[str], None]) -> None:
        self.platform = platform
        self.write = write
        self.seq = 0

    async def deliver(self, delivery: Delivery) -> Receipt:
        self.seq += 1
        post = delivery.post
        # User text never reaches the terminal raw: no escape sequence, no bidi control, and
        # a line or paragraph separator inside it starts an indented line of this block.
        lines = [part for line in plain_lines(post) for part in printable_lines(line)]
        target = f"dm:{delivery.room}" if post.kind == "direct" else delivery.room
        tag = f"[{target}] "
        if post.in_thread and post.request_id:
            tag += f"[R-{post.request_id} thread] "
        self.write("\n".join([tag + lines[0], *("    " + line for line in lines[1:])]))
        return Receipt(message_ref=f"{self.platform}-msg-{delivery.delivery_id}")
