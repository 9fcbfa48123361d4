"""Logging: JSON lines when stderr is not a terminal, short text when it is.

Only the fields given in ``extra`` are added; callers never pass secrets or summaries.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({})))
#: The start and stop lines of ``liaisonbot run`` (what it serves; that it stopped): INFO
#: records shown at the default level (WARNING) too, though not when it is set to ERROR.
ANNOUNCE = "liaisonbot.announce"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
                "level": record.levelname.lower(), "logger": record.name,
                "msg": record.getMessage()}
        data.update({k: v for k, v in vars(record).items()
                     if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def setup_logging() -> None:
    level = os.environ.get("LIAISONBOT_LOG_LEVEL", "WARNING").upper()
    handler = logging.StreamHandler(sys.stderr)
    if not sys.stderr.isatty():
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if root.level <= logging.WARNING:
        logging.getLogger(ANNOUNCE).setLevel(logging.INFO)
    for noisy in ("alembic", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # Driver debug logs carry SQL parameters (summaries, answers): never below WARNING.
    for driver in ("aiosqlite", "sqlalchemy", "asyncpg", "nio", "slack_sdk", "slack_bolt"):
        logging.getLogger(driver).setLevel(logging.WARNING)
