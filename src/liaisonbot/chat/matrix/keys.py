"""Ed25519 key pairs and signed JSON (spec: "Signing JSON"), and the cross-signing chain a
device is trusted through: what both the bot's identity (``crosssigning.py``) and the
device-trust filter (``trust.py``) need. Imports no other part of the Matrix adapter but
``secret_storage`` (for its base64), so either can use it without a cycle."""

from __future__ import annotations

import json
import os
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from liaisonbot.chat.matrix import secret_storage as ss


def canonical_json(value: Any) -> bytes:
    """The spec's canonical JSON: sorted keys, no spaces, UTF-8 (the bot signs no floats)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                      allow_nan=False).encode("utf-8")


def signable(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without ``signatures`` and ``unsigned``: the part a signature covers."""
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


class SigningKey:
    """One ed25519 key pair, kept as its 32-byte seed."""

    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        #: The public key, unpadded base64: what clients show as the fingerprint.
        self.public = ss.b64encode(raw)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(32))

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public}"

    def sign(self, obj: dict[str, Any], user_id: str) -> dict[str, Any]:
        """``obj`` with this key's signature added (as ``user_id``)."""
        signature = ss.b64encode(self._key.sign(canonical_json(signable(obj))))
        signed = dict(obj)
        sigs = {u: dict(s) for u, s in (obj.get("signatures") or {}).items()}
        sigs.setdefault(user_id, {})[self.key_id] = signature
        signed["signatures"] = sigs
        return signed


def verify_signed(obj: dict[str, Any], user_id: str, public: str) -> bool:
    """Whether ``obj`` carries a valid signature by ``public`` (an ed25519 key of
    ``user_id``)."""
    signature = ((obj.get("signatures") or {}).get(user_id) or {}).get(f"ed25519:{public}")
    if not isinstance(signature, str):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(ss.b64decode(public)).verify(
            ss.b64decode(signature), canonical_json(signable(obj)))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def key_of(obj: dict[str, Any] | None, user_id: str, usage: str) -> str | None:
    """The public key of a cross-signing key object, when it is ``user_id``'s key for
    ``usage`` with exactly one ed25519 key."""
    if not isinstance(obj, dict) or obj.get("user_id") != user_id:
        return None
    if usage not in (obj.get("usage") or []):
        return None
    keys = [v for k, v in (obj.get("keys") or {}).items() if str(k).startswith("ed25519:")]
    return str(keys[0]) if len(keys) == 1 and isinstance(keys[0], str) else None


def signed_devices(user_id: str, master: dict[str, Any] | None,
                   self_signing: dict[str, Any] | None,
                   devices: dict[str, dict[str, Any]]) -> set[str]:
    """The ids of ``user_id``'s devices signed by a self-signing key that is signed by the
    master key (MSC4153's "cross-signed by their owner")."""
    master_pub = key_of(master, user_id, "master")
    ssk_pub = key_of(self_signing, user_id, "self_signing")
    if not master_pub or not ssk_pub or self_signing is None:
        return set()
    if not verify_signed(self_signing, user_id, master_pub):
        return set()
    return {device_id for device_id, obj in devices.items()
            if isinstance(obj, dict) and obj.get("user_id") == user_id
            and obj.get("device_id") == device_id and verify_signed(obj, user_id, ssk_pub)}
