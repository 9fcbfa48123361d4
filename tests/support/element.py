"""An Element-like Matrix client for tests: matrix-js-sdk 43 with its Rust crypto (WASM) in Node.

The Node side is ``tests/support/element/client.mjs`` (run ``npm ci`` there once; scripts/test.sh
does it). One Node process per client; commands and replies are JSON lines over stdin/stdout::

    async with ElementClient.login(synapse.base_url, user.user_id, password=user.password,
                                   log_dir=tmp_path) as alice:
        await alice.bootstrap_cross_signing()           # Element's default: identity + device signed
        await alice.set_isolation_mode("only_signed")   # "Exclude insecure devices"
        room = await alice.create_encrypted_room("icc", invite=[bot_id])
        await alice.send(room, "!liaison help")
        reply = await alice.wait_for(room, lambda e: e.sender == bot_id)
        info = await alice.encryption_info(reply.event_id)   # shield colour + reason

A second device of the same user that is *not* cross-signed is simply another ``ElementClient``
logged in with the same password that never calls ``bootstrap_cross_signing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

__all__ = [
    "ELEMENT_DIR",
    "ElementClient",
    "ElementError",
    "ElementEvent",
    "EncryptionInfo",
    "ToDevice",
    "element_available",
    "require_element",
]

ELEMENT_DIR = Path(__file__).resolve().parent / "element"
SCRIPT = ELEMENT_DIR / "client.mjs"


class ElementError(RuntimeError):
    """The Node client answered a command with an error (or died)."""


def element_available() -> str | None:
    """None when the harness can run, else why not (no node, npm ci not run)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (ELEMENT_DIR / "node_modules" / "matrix-js-sdk").is_dir():
        return f"run `npm ci` in {ELEMENT_DIR} (scripts/test.sh does)"
    return None


def require_element() -> None:
    """Skip the calling test when the harness cannot run - fail instead when CI=true."""
    reason = element_available()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Element harness unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class ElementEvent:
    """A timeline event as the client sees it: decrypted, or with the reason it is not."""

    event_id: str
    room_id: str
    sender: str
    type: str
    content: dict[str, Any]
    encrypted: bool
    decrypted: bool
    decryption_failure: str | None  # DecryptionFailureCode, e.g. "UNSIGNED_SENDER_DEVICE"
    thread_root: str | None
    state_key: str | None = None

    @property
    def body(self) -> str:
        return str(self.content.get("body", ""))

    @property
    def msgtype(self) -> str | None:
        return self.content.get("msgtype")

    @classmethod
    def parse(cls, d: dict[str, Any]) -> ElementEvent:
        return cls(
            event_id=d["event_id"], room_id=d["room_id"], sender=d["sender"], type=d["type"],
            content=d.get("content") or {}, encrypted=bool(d["encrypted"]),
            decrypted=bool(d["decrypted"]), decryption_failure=d.get("decryption_failure"),
            thread_root=d.get("thread_root"), state_key=d.get("state_key"),
        )


@dataclass(frozen=True)
class EncryptionInfo:
    """CryptoApi.getEncryptionInfoForEvent: shield colour NONE/GREY/RED and its reason
    (UNSIGNED_DEVICE, UNVERIFIED_IDENTITY, UNKNOWN_DEVICE, ...; None with no shield)."""

    shield_colour: str
    shield_reason: str | None

    @property
    def warning(self) -> bool:
        return self.shield_colour != "NONE"


@dataclass(frozen=True)
class ToDevice:
    """A room-key to-device message this device received (m.room_key when its sender shared a
    Megolm session with it over Olm, m.room_key.withheld when it refused)."""

    type: str
    sender: str
    sender_device: str | None
    encrypted: bool
    room_id: str | None
    session_id: str | None
    code: str | None


@dataclass
class _State:
    events: dict[str, ElementEvent] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    to_device: list[ToDevice] = field(default_factory=list)


class ElementClient:
    """One matrix-js-sdk client (one device) in its own Node process."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path,
                 owned_dir: Path | None) -> None:
        self._proc = proc
        self.log_path = log_path
        self._owned_dir = owned_dir
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._state = _State()
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.user_id = ""
        self.device_id = ""
        self.access_token = ""

    # ------------------------------------------------------------------- lifecycle
    @classmethod
    async def start(cls, log_dir: str | os.PathLike[str] | None = None,
                    name: str = "element") -> ElementClient:
        """Spawn the Node process (not logged in yet)."""
        reason = element_available()
        if reason is not None:
            raise ElementError(reason)
        owned = None
        if log_dir is None:
            owned = Path(tempfile.mkdtemp(prefix="liaisonbot-element-"))
            log_dir = owned
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        log_path = Path(log_dir) / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        err = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            proc = await asyncio.create_subprocess_exec(
                "node", str(SCRIPT), cwd=str(ELEMENT_DIR),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                limit=16 * 1024 * 1024,
            )
        finally:
            os.close(err)
        self = cls(proc, log_path, owned)
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), 60)
        except BaseException:
            await self.close()
            raise
        return self

    @classmethod
    @contextlib.asynccontextmanager
    async def login(cls, base_url: str, user_id: str, *, password: str | None = None,
                    access_token: str | None = None, device_id: str | None = None,
                    device_name: str = "Element (test)",
                    log_dir: str | os.PathLike[str] | None = None) -> AsyncIterator[ElementClient]:
        """Start a client and log in: with a password (a new device) or an access token."""
        client = await cls.start(log_dir, name=user_id.strip("@").split(":")[0])
        try:
            await client._login(base_url=base_url, user_id=user_id, password=password,
                                access_token=access_token, device_id=device_id,
                                device_name=device_name)
            yield client
        finally:
            await client.close()

    async def close(self) -> None:
        proc = self._proc
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.call("stop"), 5)
            with contextlib.suppress(ProcessLookupError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])

    # -------------------------------------------------------------------- protocol
    async def _read(self) -> None:
        assert self._proc.stdout is not None
        try:
            while True:
                line = await self._proc.stdout.readline()
                if not line:
                    break
                msg = json.loads(line)
                if "event" in msg:
                    ev = ElementEvent.parse(msg["event"])
                    if ev.event_id not in self._state.events:
                        self._state.order.append(ev.event_id)
                    self._state.events[ev.event_id] = ev
                elif "to_device" in msg:
                    self._state.to_device.append(ToDevice(**msg["to_device"]))
                elif msg.get("ready"):
                    if not self._ready.done():
                        self._ready.set_result(None)
                    continue
                else:
                    fut = self._pending.pop(msg.get("id"), None)
                    if fut is not None and not fut.done():
                        if msg.get("ok"):
                            fut.set_result(msg.get("result"))
                        else:
                            fut.set_exception(ElementError(str(msg.get("error"))))
                    continue
                async with self._changed:
                    self._changed.notify_all()
        finally:
            died = ElementError(f"element client exited\n{self.log_tail()}")
            if not self._ready.done():
                self._ready.set_exception(died)
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(died)
            self._pending.clear()
            async with self._changed:
                self._changed.notify_all()

    async def call(self, cmd: str, *, timeout: float = 30, **args: Any) -> Any:
        """Send one command and wait for its reply."""
        if self._reader.done():
            raise ElementError(f"element client is not running\n{self.log_tail()}")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps({"id": rid, "cmd": cmd, **args}) + "\n").encode())
        await self._proc.stdin.drain()
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"{cmd} got no reply within {timeout}s\n{self.log_tail()}") from None
        finally:
            self._pending.pop(rid, None)

    # -------------------------------------------------------------------- commands
    async def _login(self, **kw: Any) -> None:
        result = await self.call("login", timeout=60, **kw)
        self.user_id, self.device_id = result["user_id"], result["device_id"]
        self.access_token = result["access_token"]

    async def bootstrap_cross_signing(self) -> dict[str, Any]:
        """Create and upload the user's cross-signing keys and sign this device with them, as
        Element does at first login. Returns {ready, master_key, self_signing_key, device_signed}."""
        result: dict[str, Any] = await self.call("bootstrap_cross_signing", timeout=60)
        return result

    async def own_identity(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("own_identity")
        return result

    async def set_isolation_mode(self, mode: Literal["all", "only_signed"]) -> None:
        """"all" = AllDevicesIsolationMode (classic); "only_signed" =
        OnlySignedDevicesIsolationMode (Element's "exclude insecure devices")."""
        await self.call("set_isolation_mode", mode=mode)

    async def create_encrypted_room(self, name: str, invite: list[str] | tuple[str, ...] = (),
                                    *, encrypted: bool = True) -> str:
        result = await self.call("create_room", name=name, invite=list(invite),
                                 encrypted=encrypted, timeout=40)
        return str(result["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.call("invite", room_id=room_id, user_id=user_id)

    async def join(self, room_id: str) -> None:
        await self.call("join", room_id=room_id, timeout=40)

    async def send(self, room_id: str, text: str, thread_root: str | None = None,
                   msgtype: str = "m.text") -> str:
        """Send a message (encrypted when the room is, as Element would) and return its id."""
        result = await self.call("send", room_id=room_id, text=text, thread_root=thread_root,
                                 msgtype=msgtype, timeout=40)
        return str(result["event_id"])

    async def encryption_info(self, event_id: str) -> EncryptionInfo | None:
        result = await self.call("encryption_info", event_id=event_id)
        return None if result is None else EncryptionInfo(**result)

    async def device_status(self, user_id: str, device_id: str) -> dict[str, Any] | None:
        """getDeviceVerificationStatus: {signed_by_owner, cross_signing_verified, ...}."""
        result: dict[str, Any] | None = await self.call("device_status", user_id=user_id,
                                                        device_id=device_id)
        return result

    async def devices(self, user_id: str) -> list[str]:
        return list(await self.call("devices", user_id=user_id))

    async def set_blacklist_unverified(self, on: bool = True) -> None:
        """Element's "never send encrypted messages to unverified sessions": room keys are
        withheld (code ``m.unverified``) from every device this user has not verified."""
        await self.call("set_blacklist_unverified", on=on)

    async def cross_sign_device(self, device_id: str) -> None:
        """Sign another device of this user with its self-signing key (needs
        ``bootstrap_cross_signing`` on this device first)."""
        await self.call("cross_sign_device", device_id=device_id, timeout=40)

    async def new_recovery_key(self) -> str:
        """A fresh recovery key in Element's format (CryptoApi.createRecoveryKeyFromPassphrase)."""
        return str((await self.call("new_recovery_key"))["recovery_key"])

    async def user_status(self, user_id: str) -> dict[str, Any]:
        """getUserVerificationStatus: {known, verified, was_verified, needs_user_approval}."""
        result: dict[str, Any] = await self.call("user_status", user_id=user_id)
        return result

    # ------------------------------------------------------------------- receiving
    def events(self, room_id: str | None = None) -> list[ElementEvent]:
        """Every event seen so far (latest state of each), oldest first."""
        evs = (self._state.events[i] for i in self._state.order)
        return [e for e in evs if room_id is None or e.room_id == room_id]

    def to_device(self, type_: str | None = None, sender: str | None = None) -> list[ToDevice]:
        return [t for t in self._state.to_device
                if (type_ is None or t.type == type_) and (sender is None or t.sender == sender)]

    def room_keys_from(self, user_id: str, room_id: str | None = None) -> list[ToDevice]:
        """m.room_key messages this device received from user_id (over Olm)."""
        return [t for t in self.to_device("m.room_key", user_id)
                if room_id is None or t.room_id == room_id]

    async def wait_for(self, room_id: str, predicate: Callable[[ElementEvent], bool],
                       timeout: float = 30) -> ElementEvent:
        """The first event in room_id (in its latest decryption state) matching predicate."""
        async def find() -> ElementEvent:
            async with self._changed:
                while True:
                    for ev in self.events(room_id):
                        if predicate(ev):
                            return ev
                    if self._reader.done():
                        raise ElementError(f"element client exited\n{self.log_tail()}")
                    await self._changed.wait()
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            seen = [(e.sender, e.type, e.decryption_failure, e.body[:60])
                    for e in self.events(room_id)][-10:]
            raise TimeoutError(f"{self.user_id}: no matching event in {room_id} within "
                               f"{timeout}s; last seen: {seen}") from None

    async def wait_until(self, cond: Callable[[], bool], timeout: float = 30,
                         what: str = "condition") -> None:
        """Until cond() holds, re-checked whenever an event or to-device message arrives."""
        async def check() -> None:
            async with self._changed:
                while not cond():
                    if self._reader.done():
                        raise ElementError(f"element client exited\n{self.log_tail()}")
                    await self._changed.wait()
        try:
            await asyncio.wait_for(check(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.user_id}: {what} not within {timeout}s") from None
