
"""A real Synapse homeserver for tests, plus a small nio "partner" client.

Usage from a conftest::

    from support.synapse import synapse  # noqa: F401  (session fixture)

    async def test_x(synapse, tmp_path):
        alice = await synapse.register("alice")
        partner = await PartnerClient.login(synapse, alice, tmp_path / "alice")
        ...

The server itself is managed synchronously (subprocess + urllib polling), so
the session fixture does not depend on any event loop; everything that talks
to the server over HTTP (registration, clients) is async and can be used from
any test's loop.
"""


from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import hmac
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

__all__ = [
    "PartnerClient",
    "RegisteredUser",
    "SynapseServer",
    "SynapseStartError",
    "own_echo_latency",
    "require_synapse",
    "synapse",
    "synapse_available",
    "thread_root_of",
]

# Very high, but finite: Synapse treats the numbers as floats/ints, nothing
# special about 0 here, so "huge" is the unambiguous way to say "no limit".
_NO_LIMIT = {"per_second": 100_000, "burst_count": 100_000}

_RATE_LIMITS: dict[str, Any] = {
    # Only keys read by synapse/config/ratelimiting.py (checked against 1.163).
    "rc_message": _NO_LIMIT,
    "rc_registration": _NO_LIMIT,
    "rc_registration_token_validity": _NO_LIMIT,
    "rc_login": {
        "address": _NO_LIMIT,
        "account": _NO_LIMIT,
        "failed_attempts": _NO_LIMIT,
    },
    "rc_admin_redaction": _NO_LIMIT,
    "rc_joins": {"local": _NO_LIMIT, "remote": _NO_LIMIT},
    "rc_joins_per_room": _NO_LIMIT,
    "rc_3pid_validation": _NO_LIMIT,
    "rc_invites": {
        "per_room": _NO_LIMIT,
        "per_user": _NO_LIMIT,
        "per_issuer": _NO_LIMIT,
    },
    "rc_third_party_invite": _NO_LIMIT,
    "rc_key_requests": _NO_LIMIT,
    "rc_media_create": _NO_LIMIT,
    "rc_presence": {"per_user": _NO_LIMIT},
    "rc_delayed_event_mgmt": _NO_LIMIT,
    "rc_room_creation": _NO_LIMIT,
    "rc_reports": _NO_LIMIT,
    "rc_user_directory": _NO_LIMIT,
    "rc_profile": _NO_LIMIT,
}

MEGOLM = "m.megolm.v1.aes-sha2"

# Presence off and a generous timeline so a burst of messages between two
# syncs is not cut into a "limited" timeline with a gap.
SYNC_FILTER: dict[str, Any] = {
    "presence": {"not_types": ["*"]},
    "room": {"timeline": {"limit": 200}},
}


class SynapseStartError(RuntimeError):
    """Synapse did not come up; the message carries the tail of its logs."""


def synapse_available() -> bool:
    """True if the real `synapse` package (not this module) is importable."""
    try:
        return importlib.util.find_spec("synapse.app.homeserver") is not None
    except (ImportError, ValueError):
        return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"<no {path.name}>"
    return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True)
class RegisteredUser:
    user_id: str
    access_token: str
    device_id: str
    password: str
    localpart: str
    admin: bool = False


class SynapseServer:
    """One Synapse process on 127.0.0.1:<free port> with a throw-away data dir."""

    def __init__(
        self,
        server_name: str = "localhost",
        *,
        room_version: str | None = None,
        startup_timeout: float = 60.0,
        data_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = False,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.server_name = server_name
        self.room_version = room_version  # None -> Synapse's default (12 in 1.163)
        self.startup_timeout = startup_timeout
        self.keep_data = keep_data
        self.extra_config = dict(extra_config or {})
        self.registration_shared_secret = secrets.token_hex(32)
        # Stable across restart() (rewriting the config must not rotate them).
        self._macaroon_secret = secrets.token_hex(32)
        self._form_secret = secrets.token_hex(32)
        self._given_dir = Path(data_dir) if data_dir is not None else None
        self.data_dir: Path | None = None
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.last_start_seconds: float | None = None
        self._admin: RegisteredUser | None = None
        self._atexit_registered = False

    # ---------------------------------------------------------------- paths
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("SynapseServer not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "homeserver.log"

    @property
    def stdout_path(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "stdout.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def log_tail(self, lines: int = 60) -> str:
        if self.data_dir is None:
            return "<not started>"
        return (
            f"--- {self.log_path} ---\n{_tail(self.log_path, lines)}\n"
            f"--- {self.stdout_path} ---\n{_tail(self.stdout_path, lines)}"
        )

    # --------------------------------------------------------------- config
    def _config(self) -> dict[str, Any]:
        assert self.data_dir is not None and self.port is not None
        d = self.data_dir
        cfg: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": self.base_url + "/",
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    # "client" also mounts /_synapse/admin in current Synapse.
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(d / "log.config"),
            "media_store_path": str(d / "media_store"),
            "signing_key_path": str(d / "signing.key"),
            "registration_shared_secret": self.registration_shared_secret,
            "macaroon_secret_key": self._macaroon_secret,
            "form_secret": self._form_secret,
            "enable_registration": False,
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_metrics": False,
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "serve_server_wellknown": False,
            "allow_guest_access": False,
            "limit_usage_by_mau": False,
            **_RATE_LIMITS,
        }
        if self.room_version is not None:
            cfg["default_room_version"] = self.room_version
        cfg.update(self.extra_config)
        return cfg

    def _log_config(self) -> dict[str, Any]:
        assert self.data_dir is not None
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "precise": {"format": "%(asctime)s - %(name)s - %(levelname)s - %(message)s"}
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
        }

    def _write_files(self) -> None:
        assert self.data_dir is not None
        (self.data_dir / "media_store").mkdir(exist_ok=True)
        # YAML is a superset of JSON: no PyYAML needed on our side.
        self.config_path.write_text(json.dumps(self._config(), indent=2), encoding="utf-8")
        (self.data_dir / "log.config").write_text(
            json.dumps(self._log_config(), indent=2), encoding="utf-8"
        )
        key_path = self.data_dir / "signing.key"
        if not key_path.exists():
            try:  # signedjson ships with Synapse; in-process is much faster
                from signedjson.key import generate_signing_key, write_signing_keys

                with open(key_path, "w", encoding="utf-8") as fh:
                    write_signing_keys(fh, [generate_signing_key("a_" + secrets.token_hex(2))])
            except ImportError:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "synapse.app.homeserver",
                        "-c",
                        str(self.config_path),
                        "--generate-keys",
                    ],
                    cwd=self.data_dir,
                    check=True,
                    capture_output=True,
                    timeout=120,
                )

    # ------------------------------------------------------------ lifecycle
    def start(self) -> SynapseServer:
        """Generate config (first time), spawn Synapse, wait for /versions."""
        if self.running:
            return self
        if self.data_dir is None:
            if self._given_dir is not None:
                self._given_dir.mkdir(parents=True, exist_ok=True)
                self.data_dir = self._given_dir
            else:
                self.data_dir = Path(tempfile.mkdtemp(prefix="liaisonbot-synapse-"))
        fixed_port = self.port is not None  # restart(): keep the same port
        attempts = 1 if fixed_port else 3
        for attempt in range(attempts):
            if not fixed_port:
                self.port = _free_port()
            self._write_files()
            try:
                self._spawn_and_wait()
                break
            except SynapseStartError as exc:
                port_race = "Address already in use" in str(exc)
                if attempt + 1 < attempts and port_race:
                    continue
                raise
        if not self._atexit_registered:
            atexit.register(self._atexit_stop)
            self._atexit_registered = True
        return self

    def _spawn_and_wait(self) -> None:
        assert self.data_dir is not None
        started = time.monotonic()
        out = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.data_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            out.close()
        deadline = started + self.startup_timeout
        url = self.base_url + "/_matrix/client/versions"
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise SynapseStartError(
                    f"Synapse exited with {rc} during startup\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        json.load(resp)
                        break
            except (urllib.error.URLError, ConnectionError, OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                self._terminate()
                raise SynapseStartError(
                    f"Synapse did not answer {url} within {self.startup_timeout}s\n"
                    + self.log_tail()
                )
            time.sleep(0.1)
        self.last_start_seconds = time.monotonic() - started

    def _terminate(self, grace: float = 5.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self, *, keep_data: bool = False) -> None:
        """Terminate Synapse and remove the data dir (unless keep_data).

        ``stop(keep_data=True)`` only terminates the process: data dir, port, secrets and the
        cached admin stay, so a later ``start()`` brings the same server back (what
        ``restart()`` does, in two steps - for tests of a homeserver outage)."""
        if keep_data:
            self._terminate()
            return
        self._terminate()
        if self.data_dir is not None and not self.keep_data and self._given_dir is None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir = None
        self.port = None
        self._admin = None

    def restart(self) -> SynapseServer:
        """Stop and start again on the same port with the same data."""
        self._terminate()
        return self.start()

    def _atexit_stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()

    def __enter__(self) -> SynapseServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ admin API
    async def register(
        self, localpart: str, password: str | None = None, admin: bool = False
    ) -> RegisteredUser:
        """Shared-secret registration (/_synapse/admin/v1/register)."""
        password = password if password is not None else secrets.token_urlsafe(16)
        url = self.base_url + "/_synapse/admin/v1/register"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as resp:
                resp.raise_for_status()
                nonce = (await resp.json())["nonce"]
            mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
            for part in (nonce, localpart, password):
                mac.update(part.encode("utf8"))
                mac.update(b"\x00")
            mac.update(b"admin" if admin else b"notadmin")
            body = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            async with http.post(url, json=body) as resp:
                data = await resp.json()
                if resp.status != 200:
                    raise RuntimeError(f"register {localpart!r} failed: {resp.status} {data}")
        return RegisteredUser(
            user_id=data["user_id"],
            access_token=data["access_token"],
            device_id=data["device_id"],
            password=password,
            localpart=localpart,
            admin=admin,
        )

    async def admin_user(self) -> RegisteredUser:
        """A lazily registered admin (cached for this server's lifetime)."""
        if self._admin is None:
            self._admin = await self.register("admin-" + secrets.token_hex(4), admin=True)
        return self._admin

    async def override_ratelimit(self, user_id: str, admin_token: str | None = None) -> None:
        """Exempt user_id from message rate limiting (messages_per_second 0)."""
        if admin_token is None:
            admin_token = (await self.admin_user()).access_token
        url = (
            self.base_url
            + "/_synapse/admin/v1/users/"
            + urllib.parse.quote(user_id, safe="")
            + "/override_ratelimit"
        )
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url,
                json={"messages_per_second": 0, "burst_count": 0},
                headers={"Authorization": f"Bearer {admin_token}"},
            ) as resp:
                if resp.status != 200:
                    raise RuntimeError(
                        f"override_ratelimit failed: {resp.status} {await resp.text()}"
                    )


# ====================================================================== nio


def thread_root_of(event: Any) -> str | None:
    """The m.thread root event id of a (decrypted) nio event, else None."""
    source = getattr(event, "source", None) or {}
    rel = (source.get("content") or {}).get("m.relates_to") or {}
    if rel.get("rel_type") == "m.thread":
        return rel.get("event_id")
    return None


@dataclass
class _Inbox:
    events: list[Any] = field(default_factory=list)
    undecrypted: list[Any] = field(default_factory=list)


class PartnerClient:
    """A nio.AsyncClient playing the human on the other side of the bot."""

    def __init__(
        self, client: Any, user: RegisteredUser, encrypted: bool, owned_store: str | None = None
    ) -> None:
        self.client = client
        self.user = user
        self.encrypted = encrypted
        self._owned_store = owned_store
        self._inbox: dict[str, _Inbox] = {}

    @property
    def user_id(self) -> str:
        return self.user.user_id

    @classmethod
    async def login(
        cls,
        server: SynapseServer,
        user: RegisteredUser,
        store_dir: str | os.PathLike[str] | None = None,
        encrypted: bool = True,
        device_name: str = "liaisonbot-test-partner",
    ) -> PartnerClient:
        """Password login (a fresh device), upload keys, initial sync."""
        from nio import AsyncClient, AsyncClientConfig, LoginResponse

        owned = None
        if store_dir is None:
            owned = tempfile.mkdtemp(prefix="liaisonbot-nio-")
            store_dir = owned
        Path(store_dir).mkdir(parents=True, exist_ok=True)
        config = AsyncClientConfig(
            encryption_enabled=encrypted,
            store_sync_tokens=True,
            max_timeouts=3,
            request_timeout=30,
        )
        client = AsyncClient(
            server.base_url, user.user_id, store_path=str(store_dir), config=config
        )
        partner = cls(client, user, encrypted, owned)
        try:
            resp = await client.login(password=user.password, device_name=device_name)
            if not isinstance(resp, LoginResponse):
                raise RuntimeError(f"login {user.user_id} failed: {resp}")
            if encrypted and client.should_upload_keys:
                await partner._check(await client.keys_upload(), "keys_upload")
            await partner.sync_once()
        except BaseException:
            await partner.close()
            raise
        return partner

    @staticmethod
    async def _check(resp: Any, what: str) -> Any:
        from nio import ErrorResponse

        if isinstance(resp, ErrorResponse):
            raise RuntimeError(f"{what} failed: {resp}")
        return resp

    # ----------------------------------------------------------------- sync
    async def sync_once(self, timeout_ms: int = 0) -> Any:
        """One /sync; buffers timeline events and runs nio's key chores."""
        from nio import MegolmEvent, SyncResponse

        c = self.client
        resp = await c.sync(timeout=timeout_ms, sync_filter=SYNC_FILTER)
        if not isinstance(resp, SyncResponse):
            raise RuntimeError(f"sync failed: {resp}")
        for room_id, info in resp.rooms.join.items():
            inbox = self._inbox.setdefault(room_id, _Inbox())
            for ev in info.timeline.events:
                (inbox.undecrypted if isinstance(ev, MegolmEvent) else inbox.events).append(ev)
        if c.olm is not None:
            # What sync_forever() would do for us.
            if c.should_upload_keys:
                await self._check(await c.keys_upload(), "keys_upload")
            if c.should_query_keys:
                await self._check(await c.keys_query(), "keys_query")
            if c.should_claim_keys:
                await self._check(await c.keys_claim(c.get_users_for_key_claiming()), "keys_claim")
            await c.send_to_device_messages()
            # Room keys may have arrived after the events they unlock.
            for inbox in self._inbox.values():
                still = []
                for ev in inbox.undecrypted:
                    try:
                        dec = c.decrypt_event(ev)
                    except Exception:  # nio raises EncryptionError & co
                        still.append(ev)
                        continue
                    inbox.events.append(dec)
                inbox.undecrypted = still
        return resp

    async def _sync_until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.user_id}: timed out waiting for {what}")
            await self.sync_once(timeout_ms=500)

    # ---------------------------------------------------------------- rooms
    async def create_room(
        self,
        name: str,
        encrypted: bool,
        invite: list[str] | tuple[str, ...] = (),
        *,
        room_version: str | None = None,
        timeout: float = 30,
    ) -> str:
        from nio import RoomCreateResponse

        initial_state = []
        if encrypted:
            initial_state.append(
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}
            )
        resp = await self.client.room_create(
            name=name, invite=list(invite), initial_state=initial_state, room_version=room_version
        )
        if not isinstance(resp, RoomCreateResponse):
            raise RuntimeError(f"room_create failed: {resp}")
        room_id: str = resp.room_id
        # nio only learns that a room exists / is encrypted from /sync; sending
        # before that raises (unknown room) or - worse - would go out in clear.
        await self._sync_until(
            lambda: (
                room_id in self.client.rooms
                and (not encrypted or self.client.rooms[room_id].encrypted)
            ),
            timeout,
            f"room {room_id} in sync",
        )
        return room_id

    async def join(self, room_id: str, timeout: float = 30) -> None:
        from nio import JoinResponse

        resp = await self.client.join(room_id)
        if not isinstance(resp, JoinResponse):
            raise RuntimeError(f"join {room_id} failed: {resp}")
        await self._sync_until(
            lambda: room_id in self.client.rooms, timeout, f"joined {room_id} in sync"
        )

    async def invite(self, room_id: str, user_id: str) -> None:
        from nio import RoomInviteResponse

        resp = await self.client.room_invite(room_id, user_id)
        if not isinstance(resp, RoomInviteResponse):
            raise RuntimeError(f"invite {user_id} to {room_id} failed: {resp}")

    async def prepare_encrypted_send(self, room_id: str) -> None:
        """Make sure nio knows all members' devices before encrypting.

        A sync picks up new members (which marks their keys outdated), then
        keys_query fetches the devices (a changed device list invalidates the
        outbound Megolm session so the next send re-shares it).
        """
        c = self.client
        await self.sync_once()
        if room_id not in c.rooms:
            raise RuntimeError(f"{self.user_id} does not know room {room_id}; join/sync first")
        room = c.rooms[room_id]
        if not room.encrypted or c.olm is None:
            return
        if not room.members_synced:
            await self._check(await c.joined_members(room_id), "joined_members")
        if c.should_query_keys:
            await self._check(await c.keys_query(), "keys_query")
        if c.olm.should_share_group_session(room_id):
            await self._check(
                await c.share_group_session(room_id, ignore_unverified_devices=True),
                "share_group_session",
            )

    async def send_text(
        self,
        room_id: str,
        body: str,
        thread_root: str | None = None,
        msgtype: str = "m.text",
        extra_content: dict[str, Any] | None = None,
    ) -> str:
        from nio import RoomSendResponse

        content: dict[str, Any] = {"msgtype": msgtype, "body": body}
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread_root},
            }
        if extra_content:
            content.update(extra_content)
        if self.client.olm is not None:
            await self.prepare_encrypted_send(room_id)
        resp = await self.client.room_send(
            room_id, "m.room.message", content, ignore_unverified_devices=True
        )
        if not isinstance(resp, RoomSendResponse):
            raise RuntimeError(f"room_send failed: {resp}")
        return str(resp.event_id)

    # ----------------------------------------------------------- receiving
    async def wait_for_event(
        self, room_id: str, predicate: Callable[[Any], bool], timeout: float = 30
    ) -> Any:
        """Sync until an event in room_id (decrypted if it was encrypted)
        matches predicate. Events received by any earlier sync of this client
        and not yet returned by a wait are considered too (oldest first); the
        returned event is removed from that buffer."""
        deadline = time.monotonic() + timeout
        while True:
            inbox = self._inbox.setdefault(room_id, _Inbox())
            for i, ev in enumerate(inbox.events):
                if predicate(ev):
                    del inbox.events[i]
                    return ev
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                undecrypted = len(inbox.undecrypted)
                raise TimeoutError(
                    f"{self.user_id}: no matching event in {room_id} within {timeout}s "
                    f"({undecrypted} still undecryptable)"
                )
            await self.sync_once(timeout_ms=int(min(remaining, 0.5) * 1000))

    async def wait_for_message(
        self, room_id: str, predicate: Callable[[Any], bool] = lambda e: True, timeout: float = 30
    ) -> Any:
        """Like wait_for_event but only for m.room.message events (nio RoomMessage*)."""
        from nio import RoomMessage

        return await self.wait_for_event(
            room_id, lambda e: isinstance(e, RoomMessage) and predicate(e), timeout
        )

    def buffered_events(self, room_id: str) -> list[Any]:
        """Events received (and decrypted) but not yet returned by a wait."""
        return list(self._inbox.get(room_id, _Inbox()).events)

    def undecryptable_events(self, room_id: str) -> list[Any]:
        """MegolmEvents whose room key has not arrived (yet)."""
        return list(self._inbox.get(room_id, _Inbox()).undecrypted)

    def clear_inbox(self, room_id: str | None = None) -> None:
        if room_id is None:
            self._inbox.clear()
        else:
            self._inbox.pop(room_id, None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.close()
        if self._owned_store is not None:
            shutil.rmtree(self._owned_store, ignore_errors=True)
            self._owned_store = None


# ================================================================ benchmark


async def own_echo_latency(client: Any, room_id: str, n: int, timeout: float = 30) -> list[float]:
    """Seconds from send to seeing the event in the sender's own /sync, n times.

    One long-polling sync loop runs in the background; messages are sent one
    after the other, each as soon as the previous echo arrived (no sleeps).
    `client` is a nio.AsyncClient or a PartnerClient (its inner client is used;
    the PartnerClient's event buffer is bypassed).
    """
    from nio import RoomSendResponse, SyncResponse

    c = client.client if isinstance(client, PartnerClient) else client
    if room_id not in c.rooms:
        await c.sync(timeout=0, sync_filter=SYNC_FILTER)
    if isinstance(client, PartnerClient) and c.olm is not None:
        await client.prepare_encrypted_send(room_id)

    seen: dict[str, float] = {}
    cond = asyncio.Condition()

    async def sync_loop() -> None:
        while True:
            resp = await c.sync(timeout=30_000, sync_filter=SYNC_FILTER)
            now = time.perf_counter()
            if not isinstance(resp, SyncResponse):
                raise RuntimeError(f"sync failed: {resp}")
            room = resp.rooms.join.get(room_id)
            if room is not None:
                for ev in room.timeline.events:
                    eid = getattr(ev, "event_id", None)
                    if eid:
                        seen.setdefault(eid, now)
            async with cond:
                cond.notify_all()

    task = asyncio.create_task(sync_loop())
    out: list[float] = []
    try:
        for i in range(n):
            t0 = time.perf_counter()
            resp = await c.room_send(
                room_id,
                "m.room.message",
                {"msgtype": "m.text", "body": f"echo {i} {secrets.token_hex(4)}"},
                ignore_unverified_devices=True,
            )
            if not isinstance(resp, RoomSendResponse):
                raise RuntimeError(f"room_send failed: {resp}")
            eid = resp.event_id

            async def arrived(eid: str = eid) -> None:
                async with cond:
                    await cond.wait_for(lambda: eid in seen or task.done())

            waiter = asyncio.ensure_future(arrived())
            done, _ = await asyncio.wait(
                {waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if task in done:
                waiter.cancel()
                task.result()  # re-raise the sync failure
                raise RuntimeError("sync loop ended")
            if waiter not in done:
                waiter.cancel()
                raise TimeoutError(f"echo of {eid} not seen within {timeout}s")
            if eid not in seen:  # woken because the task finished
                task.result()
            out.append(seen[eid] - t0)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    return out


# ================================================================= fixtures


def require_synapse() -> None:
    """Skip the calling test if Synapse is missing - but fail when CI=true."""
    if not synapse_available():
        reason = "matrix-synapse is not installed (pip install matrix-synapse)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; required when CI=true", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def synapse() -> Iterator[SynapseServer]:
    """A started Synapse for the whole session (sync: no event loop involved)."""
    require_synapse()
    server = SynapseServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
