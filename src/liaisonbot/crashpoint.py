"""A test seam: ``LIAISONBOT_CRASH_AT=STAGE`` makes the process SIGKILL itself at that stage.

The crash tests (``tests/test_inbox_crash.py``) kill a real ``liaisonbot run`` at each stage a
Slack command goes through, deterministically. The variable is read once, when this module is
first imported; unset (production), :func:`crash_point` compares one string and returns. No
configuration file or command-line option can set it, and it never changes what the process
does before the named stage.

Stages, in the order a command meets them:

``inbox-insert``
    the door's ``INSERT`` ran, its transaction is not committed, nothing was acknowledged;
``acked``
    the row is committed and the acknowledgement (HTTP 200, Socket Mode ack) was written;
``work``
    inside the transaction of the work: its changes and the row's done mark were sent,
    nothing is committed;
``committed``
    that transaction is committed; none of its posts (card, reply) has gone out.
"""

from __future__ import annotations

import os
import signal

ENV = "LIAISONBOT_CRASH_AT"
STAGES = ("inbox-insert", "acked", "work", "committed")

_AT = os.environ.get(ENV, "")


def crash_point(stage: str) -> None:
    """SIGKILL this process now when ``$LIAISONBOT_CRASH_AT`` names ``stage``."""
    if _AT and stage == _AT:
        os.kill(os.getpid(), signal.SIGKILL)
