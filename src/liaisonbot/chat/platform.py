"""What a chat platform adapter offers the runner."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from liaisonbot.service.ports import ChatGateway


class Platform(Protocol):
    """A platform adapter: it translates inbound events into desk calls and owns the
    outbound gateway for its rooms."""

    name: str

    @property
    def gateway(self) -> ChatGateway: ...

    def mount(self, app: web.Application) -> None:
        """Add HTTP routes (Slack's ``/slack/events``); most platforms add none."""

    async def start(self) -> None: ...

    async def quiesce(self, timeout: float) -> None:  # noqa: ASYNC109 (a drain budget)
        """Wait (at most ``timeout`` s) for inbound work already acknowledged to finish."""

    async def stop(self) -> None: ...

    async def health(self) -> dict[str, Any]: ...
