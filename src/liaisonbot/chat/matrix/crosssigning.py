"""The bot's cross-signing identity (spec: "Cross-signing"), written beside matrix-nio 0.26,
which has none: master, self-signing and user-signing ed25519 keys (signed JSON and the
signature chain are in ``keys.py``), uploads.

On start (``CrossSigning.ensure``), after nio has uploaded the device keys:

1. ``/keys/query`` for the bot's own user: the server's master and self-signing keys, and
   the bot's device with its signatures.
2. The private keys come from ``data_dir/cross_signing.json`` (sealed with the pickle key) or,
   when that is gone and ``LIAISONBOT_MATRIX_RECOVERY_KEY`` is set, from secret storage
   (``m.cross_signing.*`` account data).
3. No identity on the server: create (or reuse the saved) keys, save them, upload them
   (``/keys/device_signing/upload``; a first upload needs no password, MSC3967). With a
   recovery key, an empty secret storage gets the keys (and the key description, as Element
   writes it).
4. The server's master key is not ours: nothing is replaced. ``state.problem`` says so in
   one sentence (health shows it); ``reset-identity`` (``admin.py``) replaces it on purpose
   (needs the password for user-interactive auth).
5. The bot's device is signed with the self-signing key (``/keys/signatures/upload``) unless
   it already is.
"""

from __future__ import annotations

import json
import logging
import os
import secrets as pysecrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from liaisonbot.chat.matrix import secret_storage as ss
from liaisonbot.chat.matrix.keys import SigningKey, key_of, signable, signed_devices, verify_signed
from liaisonbot.service import messages as msg

log = logging.getLogger(__name__)
KEYS_FILE = "cross_signing.json"
USAGES = ("master", "self_signing", "user_signing")
SECRET_NAMES = {usage: f"m.cross_signing.{usage}" for usage in USAGES}
DEFAULT_KEY = "m.secret_storage.default_key"


# ---------------------------------------------------------------------- the identity

@dataclass
class Identity:
    master: SigningKey
    self_signing: SigningKey
    user_signing: SigningKey

    @classmethod
    def generate(cls) -> Identity:
        return cls(SigningKey.generate(), SigningKey.generate(), SigningKey.generate())

    def by_usage(self) -> dict[str, SigningKey]:
        return {"master": self.master, "self_signing": self.self_signing,
                "user_signing": self.user_signing}

    def seeds(self) -> dict[str, str]:
        return {usage: ss.b64encode(key.seed) for usage, key in self.by_usage().items()}

    @classmethod
    def from_seeds(cls, seeds: dict[str, str]) -> Identity:
        try:
            keys = {u: SigningKey(ss.b64decode(seeds[u])) for u in USAGES}
        except (KeyError, ValueError, TypeError) as error:
            raise ss.SecretStorageError("the cross-signing keys are incomplete") from error
        return cls(keys["master"], keys["self_signing"], keys["user_signing"])

    def public_keys(self, user_id: str) -> dict[str, dict[str, Any]]:
        """The body of ``/keys/device_signing/upload``: the three public key objects, the
        self-signing and user-signing ones signed by the master key."""
        def obj(usage: str, key: SigningKey) -> dict[str, Any]:
            return {"user_id": user_id, "usage": [usage], "keys": {key.key_id: key.public}}

        return {"master_key": obj("master", self.master),
                "self_signing_key": self.master.sign(obj("self_signing", self.self_signing),
                                                     user_id),
                "user_signing_key": self.master.sign(obj("user_signing", self.user_signing),
                                                     user_id)}


def load_identity(data_dir: str | Path, pickle_key: str) -> Identity | None:
    path = Path(data_dir) / KEYS_FILE
    try:
        blob = path.read_bytes()
    except OSError:
        return None
    identity = Identity.from_seeds(ss.unseal(pickle_key, blob))
    if ss.needs_reseal(blob):  # sealed before the password KDF: sealed again with it
        save_identity(data_dir, pickle_key, identity)
    return identity


def save_identity(data_dir: str | Path, pickle_key: str, identity: Identity) -> None:
    path = Path(data_dir) / KEYS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(ss.seal(pickle_key, identity.seeds()))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


@dataclass
class IdentityState:
    """What health reports about the bot's identity."""

    cross_signed: bool = False
    master_key: str | None = None
    #: One sentence when the identity cannot be used (nothing is replaced silently).
    problem: str | None = None
    #: The secret storage holds the keys (only known when a recovery key is set).
    in_secret_storage: bool | None = None
    #: ``ensure`` should run (again): not done yet, or it failed for a passing reason.
    pending: bool = True

    def as_health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cross_signed": self.cross_signed,
                               "master_key": self.master_key}
        if self.in_secret_storage is not None:
            out["in_secret_storage"] = self.in_secret_storage
        if self.problem:
            out["problem"] = self.problem
        return out


class HomeserverError(RuntimeError):
    """An answer the identity code could not use (carries the status and errcode)."""

    def __init__(self, what: str, status: int, body: Any) -> None:
        errcode = body.get("errcode") if isinstance(body, dict) else None
        super().__init__(f"{what}: HTTP {status} {errcode or ''}".strip())
        self.status = status
        self.errcode = errcode
        self.body = body


class CrossSigning:
    """Creates, restores, uploads and uses the bot's cross-signing keys over an nio client's
    HTTP session (any logged-in ``AsyncClient`` whose device keys are uploaded)."""

    def __init__(self, client: Any, *, data_dir: str, pickle_key: str,
                 recovery_key: str | None = None, password: str | None = None) -> None:
        self.client = client
        self.data_dir = data_dir
        self.pickle_key = pickle_key
        self.recovery_key = recovery_key
        self.password = password
        self.state = IdentityState()

    @property
    def user_id(self) -> str:
        return str(self.client.user_id)

    # ------------------------------------------------------------------ HTTP

    async def _call(self, method: str, path: str, body: Any = None,
                    ok: tuple[int, ...] = (200,)) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.client.access_token}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        async with await self.client.send(method, "/_matrix/client/v3" + path, data,
                                          headers=headers) as response:
            status = response.status
            parsed = await response.json(content_type=None)
        if status not in ok:
            raise HomeserverError(f"{method} {path.split('?')[0]}", status, parsed)
        return status, parsed

    async def _account_data(self, kind: str) -> dict[str, Any] | None:
        path = f"/user/{quote(self.user_id)}/account_data/{quote(kind)}"
        status, body = await self._call("GET", path, ok=(200, 404))
        return dict(body) if status == 200 and isinstance(body, dict) else None

    async def _put_account_data(self, kind: str, content: dict[str, Any]) -> None:
        await self._call("PUT", f"/user/{quote(self.user_id)}/account_data/{quote(kind)}",
                         content)

    async def query_own(self) -> dict[str, Any]:
        _, body = await self._call("POST", "/keys/query",
                                   {"device_keys": {self.user_id: []}})
        return dict(body)

    # ------------------------------------------------------------------ secret storage

    async def _storage_key(self, create: bool, replace: bool = False
                           ) -> tuple[str, bytes] | None:
        """(key id, key) of the default secret storage key, checked against the recovery
        key; created when ``create`` and there is none (or, with ``replace``, when the
        default key is another one). None without a recovery key."""
        if not self.recovery_key:
            return None
        key = ss.decode_recovery_key(self.recovery_key)
        default = await self._account_data(DEFAULT_KEY)
        key_id = str((default or {}).get("key") or "")
        if key_id:
            description = await self._account_data(f"m.secret_storage.key.{key_id}")
            if description is not None:
                if not ss.key_matches(key, description) and not replace:
                    raise ss.SecretStorageError("it is not the account's default key")
                if ss.key_matches(key, description):
                    return key_id, key
        if not create:
            return None
        key_id = pysecrets.token_urlsafe(24)
        await self._put_account_data(f"m.secret_storage.key.{key_id}", ss.key_description(key))
        await self._put_account_data(DEFAULT_KEY, {"key": key_id})
        log.info("matrix secret storage key created", extra={"key_id": key_id})
        return key_id, key

    async def _from_storage(self) -> Identity | None:
        found = await self._storage_key(create=False)
        if found is None:
            return None
        key_id, key = found
        seeds: dict[str, str] = {}
        for usage, name in SECRET_NAMES.items():
            content = await self._account_data(name)
            encrypted = ((content or {}).get("encrypted") or {}).get(key_id)
            if not encrypted:
                return None
            seeds[usage] = ss.decrypt(key, name, encrypted)
        return Identity.from_seeds(seeds)

    async def _to_storage(self, identity: Identity, *, overwrite: bool = False) -> None:
        """Store the keys in secret storage when it does not hold them (or ``overwrite``)."""
        found = await self._storage_key(create=True, replace=overwrite)
        if found is None:
            return
        key_id, key = found
        seeds = identity.seeds()
        for usage, name in SECRET_NAMES.items():
            content = await self._account_data(name) or {}
            existing = (content.get("encrypted") or {}).get(key_id)
            if existing and not overwrite:
                try:
                    if ss.decrypt(key, name, existing) == seeds[usage]:
                        continue
                except ss.SecretStorageError:
                    pass
                log.warning("matrix secret storage holds other cross-signing keys; kept",
                            extra={"secret": name})
                return
            await self._put_account_data(name, {"encrypted": {
                key_id: ss.encrypt(key, name, seeds[usage])}})
        self.state.in_secret_storage = True

    # ------------------------------------------------------------------ upload and sign

    async def _upload(self, identity: Identity) -> None:
        body = identity.public_keys(self.user_id)
        status, answer = await self._call("POST", "/keys/device_signing/upload", body,
                                          ok=(200, 401))
        if status == 200:
            return
        if not self.password:
            raise HomeserverError("device_signing/upload needs the password", status, answer)
        auth = {"type": "m.login.password", "password": self.password,
                "identifier": {"type": "m.id.user", "user": self.user_id},
                "session": answer.get("session")}
        await self._call("POST", "/keys/device_signing/upload", {**body, "auth": auth})

    async def _sign_device(self, identity: Identity, device: dict[str, Any]) -> None:
        signed = identity.self_signing.sign(signable(device), self.user_id)  # only this one
        _, answer = await self._call("POST", "/keys/signatures/upload",
                                     {self.user_id: {self.client.device_id: signed}})
        failures = (answer or {}).get("failures") or {}
        if failures:
            raise HomeserverError(f"signatures/upload refused: {failures}", 200, answer)

    # ------------------------------------------------------------------ the whole thing

    async def ensure(self, *, reset: bool = False) -> IdentityState:
        """Make sure the bot's device is cross-signed by the bot's identity; never replaces
        keys on the server unless ``reset``. Network errors propagate (``state.pending`` stays
        true and the caller tries again later)."""
        state = self.state
        state.problem = None
        own = await self.query_own()
        server_master = key_of((own.get("master_keys") or {}).get(self.user_id),
                               self.user_id, "master")
        server_ssk = key_of((own.get("self_signing_keys") or {}).get(self.user_id),
                            self.user_id, "self_signing")
        device = ((own.get("device_keys") or {}).get(self.user_id) or {}).get(
            str(self.client.device_id))
        if device is None:
            raise RuntimeError("the bot's device keys are not on the server yet")

        identity = None if reset else load_identity(self.data_dir, self.pickle_key)
        if identity is None and not reset:
            try:
                identity = await self._from_storage()
            except ss.SecretStorageError as error:
                return self._stop(msg.IDENTITY_WRONG_RECOVERY_KEY.format(why=error),
                                  server_master)
            if identity is not None:
                log.info("matrix cross-signing keys restored from secret storage")
                save_identity(self.data_dir, self.pickle_key, identity)

        ours = identity is not None and identity.master.public == server_master and (
            identity.self_signing.public == server_ssk)
        if server_master and not ours and not reset:
            return self._stop(msg.IDENTITY_FOREIGN.format(master=server_master), server_master)
        if identity is None:
            identity = Identity.generate()
        if not ours:
            save_identity(self.data_dir, self.pickle_key, identity)  # before: never lost
            try:
                await self._upload(identity)
            except HomeserverError as error:
                sentence = (msg.IDENTITY_NEEDS_PASSWORD
                            if error.status == 401 and not self.password
                            else msg.IDENTITY_UPLOAD_FAILED.format(error=error))
                return self._stop(sentence, server_master)
            log.info("matrix cross-signing identity uploaded",
                     extra={"master_key": identity.master.public, "replaced": bool(reset)})
        if not verify_signed(device, self.user_id, identity.self_signing.public):
            await self._sign_device(identity, device)
            log.info("matrix device cross-signed", extra={"device": self.client.device_id})
        state.cross_signed, state.master_key, state.pending = True, identity.master.public, False
        if self.recovery_key:  # the device is signed either way; a wrong key is reported
            try:
                await self._to_storage(identity, overwrite=reset)
            except ss.SecretStorageError as error:
                return self._stop(msg.IDENTITY_WRONG_RECOVERY_KEY.format(why=error),
                                  identity.master.public, signed=True)
        return state

    def _stop(self, sentence: str, master: str | None, signed: bool = False) -> IdentityState:
        log.warning("matrix cross-signing identity unusable", extra={"problem": sentence})
        self.state.problem = sentence
        self.state.cross_signed = signed
        self.state.master_key = master
        self.state.pending = False
        return self.state


def identity_report(own: dict[str, Any], user_id: str, device_id: str) -> IdentityState:
    """From a ``/keys/query`` answer for the bot's user: is ``device_id`` signed by the
    user's self-signing key (itself signed by the master key), and the master key."""
    master = (own.get("master_keys") or {}).get(user_id)
    state = IdentityState(master_key=key_of(master, user_id, "master"), pending=False)
    devices = (own.get("device_keys") or {}).get(user_id) or {}
    state.cross_signed = device_id in signed_devices(
        user_id, master, (own.get("self_signing_keys") or {}).get(user_id), devices)
    if state.master_key is None:
        state.problem = msg.IDENTITY_NONE
    elif not state.cross_signed:
        state.problem = msg.IDENTITY_NOT_SIGNED.format(device=device_id)
    return state


async def device_state(client: Any, device_id: str) -> IdentityState:
    """Read-only ``identity_report`` of ``client``'s user over its HTTP session."""
    cs = CrossSigning(client, data_dir="", pickle_key="")
    return identity_report(await cs.query_own(), cs.user_id, device_id)

