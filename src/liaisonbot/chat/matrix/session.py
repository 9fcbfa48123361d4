"""Logging the bot's device in, and keeping it: the crypto store, device id and token live in
``[matrix] data_dir`` so the device (and the room keys partners shared with it) survives restarts.

Secrets come from the environment only:
``LIAISONBOT_MATRIX_ACCESS_TOKEN`` (+ ``LIAISONBOT_MATRIX_DEVICE_ID``, else ``whoami``) or
``LIAISONBOT_MATRIX_PASSWORD`` (logs in once, then reuses the saved device), and
``LIAISONBOT_MATRIX_PICKLE_KEY``, which encrypts the crypto store (and the cross-signing keys
saved beside it) and is required; ``LIAISONBOT_MATRIX_RECOVERY_KEY`` (optional) opens the
account's secret storage, where the cross-signing identity is kept for a new device.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse

from liaisonbot.chat.matrix.secret_storage import SecretStorageError, decode_recovery_key
from liaisonbot.chat.matrix.trust import LiaisonClient
from liaisonbot.config import MatrixSettings, secret, weak_pickle_key

SESSION_FILE = "session.json"


class MatrixSetupError(Exception):
    """The Matrix adapter cannot start; ``str()`` says why and what to set."""


@dataclass(frozen=True)
class Credentials:
    """What the environment gave us to log in with."""

    pickle_key: str
    access_token: str | None = None
    device_id: str | None = None
    password: str | None = None
    recovery_key: str | None = None

    @classmethod
    def from_env(cls) -> Credentials:
        pickle_key = secret("LIAISONBOT_MATRIX_PICKLE_KEY")
        if not pickle_key:
            raise MatrixSetupError("LIAISONBOT_MATRIX_PICKLE_KEY is not set: it encrypts the "
                                   "Matrix crypto store and is required")
        if weak := weak_pickle_key(pickle_key):
            raise MatrixSetupError(weak)
        creds = cls(pickle_key=pickle_key,
                    access_token=secret("LIAISONBOT_MATRIX_ACCESS_TOKEN"),
                    device_id=secret("LIAISONBOT_MATRIX_DEVICE_ID"),
                    password=secret("LIAISONBOT_MATRIX_PASSWORD"),
                    recovery_key=secret("LIAISONBOT_MATRIX_RECOVERY_KEY"))
        if creds.recovery_key:
            try:
                decode_recovery_key(creds.recovery_key)
            except SecretStorageError as error:
                raise MatrixSetupError(f"LIAISONBOT_MATRIX_RECOVERY_KEY: {error}") from None
        if not creds.access_token and not creds.password:
            raise MatrixSetupError("set LIAISONBOT_MATRIX_ACCESS_TOKEN or "
                                   "LIAISONBOT_MATRIX_PASSWORD to log the bot in")
        return creds


def client_config(pickle_key: str) -> AsyncClientConfig:
    """E2EE on; nio's own retries capped so the outbox and the sync loop decide."""
    return AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False,
                             pickle_key=pickle_key, max_limit_exceeded=0, max_timeouts=1,
                             request_timeout=40)


def _read_session(path: Path) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def _write_session(path: Path, data: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def lock_down(data_dir: str | Path) -> None:
    """``data_dir`` readable by this user only (0700), and every file in it (0600), whatever
    the umask: it holds the session's access token, nio's crypto store and the sealed
    cross-signing keys."""
    root = Path(data_dir)
    os.chmod(root, 0o700)
    for path in root.rglob("*"):
        if path.is_symlink():
            continue
        os.chmod(path, 0o700 if path.is_dir() else 0o600)


def make_client(settings: MatrixSettings, creds: Credentials) -> LiaisonClient:
    """The client, not yet logged in; its crypto store lives in ``data_dir`` (0700)."""
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_down(data_dir)
    return LiaisonClient(settings.homeserver, settings.user_id, store_path=str(data_dir),
                       config=client_config(creds.pickle_key))


async def login(client: AsyncClient, settings: MatrixSettings, creds: Credentials) -> None:
    """Log in (token, saved session, or password once) and load the crypto store."""
    session_path = Path(settings.data_dir) / SESSION_FILE
    saved = _read_session(session_path)
    if creds.access_token:
        device_id = creds.device_id or (saved.get("device_id")
                                        if saved.get("access_token") == creds.access_token
                                        else None)
        if not device_id:
            client.access_token = creds.access_token
            who = await client.whoami()
            if not isinstance(who, WhoamiResponse) or not who.device_id:
                raise MatrixSetupError(f"whoami failed ({who}); set LIAISONBOT_MATRIX_DEVICE_ID")
            device_id = who.device_id
        client.restore_login(settings.user_id, device_id, creds.access_token)
        _write_session(session_path, {"device_id": device_id,
                                      "access_token": creds.access_token})
    elif saved.get("device_id") and saved.get("access_token"):
        client.restore_login(settings.user_id, saved["device_id"], saved["access_token"])
    else:
        resp = await client.login(password=creds.password, device_name=settings.device_name)
        if not isinstance(resp, LoginResponse):
            raise MatrixSetupError(f"login as {settings.user_id} failed: {resp}")
        _write_session(session_path, {"device_id": resp.device_id,
                                      "access_token": resp.access_token})
    lock_down(settings.data_dir)  # nio's store, opened by the login, as the rest
