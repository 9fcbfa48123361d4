"""Sealed cookies: JSON inside Fernet (AES-CBC + HMAC-SHA256), so the browser can neither read
nor change them. Time comes from the injected clock; a sealed value also carries its own expiry."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from liaisonbot.service.ports import Clock

SESSION_COOKIE = "lb_session"
LOGIN_COOKIE = "lb_login"
#: How long a started sign-in (state, nonce, PKCE verifier) may take at the issuer.
LOGIN_SECONDS = 600


class Sealer:
    def __init__(self, key: str, clock: Clock) -> None:
        self._fernet = Fernet(key.encode())
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

    def seal(self, data: dict[str, Any], lifetime: timedelta) -> str:
        body = {**data, "exp": self._now() + int(lifetime.total_seconds())}
        return self._fernet.encrypt_at_time(json.dumps(body).encode(), self._now()).decode()

    def open(self, token: str | None, lifetime: timedelta) -> dict[str, Any] | None:
        """The sealed data, or None when missing, forged, changed or expired."""
        if not token:
            return None
        try:
            raw = self._fernet.decrypt_at_time(token.encode(), int(lifetime.total_seconds()),
                                               self._now())
            data = json.loads(raw)
        except (InvalidToken, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int):
            return None
        return data if data["exp"] > self._now() else None
