"""Matrix secret storage (spec: "Secret storage", algorithm ``m.secret_storage.v1.aes-hmac-sha2``)
and the recovery key, as Element uses them; plus the at-rest encryption of the bot's own
cross-signing keys in ``data_dir``.

- Recovery key: base58 (bitcoin alphabet) of ``0x8B 0x01`` + the 32-byte key + a parity byte
  (XOR of all previous bytes), shown in groups of four characters.
- Each secret ``name`` is encrypted with keys from HKDF-SHA256 (salt: 32 zero bytes, info:
  ``name``, 64 bytes: AES-256 key, then HMAC-SHA256 key): AES-CTR with a random 16-byte IV whose
  bit 63 is cleared, MAC over the ciphertext; all unpadded base64.
- The key description (``m.secret_storage.key.<id>``) carries ``iv``/``mac`` of 32 zero bytes
  encrypted with name ``""``, which tells whether a recovery key is the right one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2"
_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PREFIX = bytes([0x8B, 0x01])


class SecretStorageError(ValueError):
    """A recovery key or an encrypted secret that cannot be used; ``str()`` says why."""


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, as Matrix writes keys and ciphertexts."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _ALPHABET[rem] + out
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + out


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _ALPHABET.find(char)
        if index < 0:
            raise SecretStorageError("the recovery key has a character that is not base58 "
                                     "(0, O, I and l never occur)")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def encode_recovery_key(key: bytes) -> str:
    """The recovery key a person types: ``EsTc 1234 …`` (groups of four)."""
    if len(key) != 32:
        raise SecretStorageError("a secret storage key has 32 bytes")
    raw = _PREFIX + key
    parity = 0
    for byte in raw:
        parity ^= byte
    text = _b58encode(raw + bytes([parity]))
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def decode_recovery_key(text: str) -> bytes:
    """The 32-byte key of a recovery key (spaces ignored); ``SecretStorageError`` when it is
    not one."""
    raw = _b58decode("".join(text.split()))
    parity = 0
    for byte in raw:
        parity ^= byte
    if len(raw) != 35 or raw[:2] != _PREFIX or parity != 0:
        raise SecretStorageError("the recovery key is not a valid Matrix recovery key "
                                 "(48 base58 characters starting with 'Es', as Element shows it)")
    return raw[2:34]


def new_key() -> bytes:
    return os.urandom(32)


def _derive(key: bytes, name: str) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=bytes(32),
               info=name.encode("utf-8")).derive(key)
    return okm[:32], okm[32:]


def encrypt(key: bytes, name: str, secret: str, iv: bytes | None = None) -> dict[str, str]:
    """``{"iv", "ciphertext", "mac"}`` of ``secret`` stored under ``name``."""
    aes_key, mac_key = _derive(key, name)
    if iv is None:
        fresh = bytearray(os.urandom(16))
        fresh[8] &= 0x7F  # bit 63 cleared, as the spec asks
        iv = bytes(fresh)
    encryptor = Cipher(algorithms.AES(aes_key), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(secret.encode("utf-8")) + encryptor.finalize()
    mac = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    return {"iv": b64encode(iv), "ciphertext": b64encode(ciphertext), "mac": b64encode(mac)}


def decrypt(key: bytes, name: str, data: dict[str, Any]) -> str:
    """The secret, or ``SecretStorageError`` when the MAC does not match (wrong key)."""
    aes_key, mac_key = _derive(key, name)
    try:
        iv, ciphertext = b64decode(str(data["iv"])), b64decode(str(data["ciphertext"]))
        mac = b64decode(str(data["mac"]))
    except (KeyError, ValueError) as error:
        raise SecretStorageError(f"the stored secret {name} is malformed") from error
    if not hmac.compare_digest(hmac.new(mac_key, ciphertext, hashlib.sha256).digest(), mac):
        raise SecretStorageError(f"the recovery key does not open the stored secret {name}")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CTR(iv)).decryptor()
    return (decryptor.update(ciphertext) + decryptor.finalize()).decode("utf-8")


def key_description(key: bytes, name: str = "liaisonbot recovery key") -> dict[str, Any]:
    """The content of ``m.secret_storage.key.<id>`` for ``key``."""
    check = encrypt(key, "", "\0" * 32)
    return {"algorithm": ALGORITHM, "name": name, "iv": check["iv"], "mac": check["mac"]}


def key_matches(key: bytes, description: dict[str, Any]) -> bool:
    """Whether ``key`` is the one ``description`` was made for (a description without
    ``iv``/``mac`` cannot be checked and is taken as matching)."""
    if description.get("algorithm") != ALGORITHM:
        return False
    if "iv" not in description or "mac" not in description:
        return True
    check = encrypt(key, "", "\0" * 32, iv=b64decode(str(description["iv"])))
    return hmac.compare_digest(check["mac"].encode(), str(description["mac"]).rstrip("=").encode())


# ------------------------------------------------------------ at rest, with the pickle key
# Version 2 derives the key with scrypt (a password KDF: N=2**14, r=8, p=5, one of OWASP's
# equivalent settings, 16 MiB and some tens of milliseconds once per start) from the pickle key
# and a random salt kept beside the data. Version 1 (HKDF-SHA256, no salt: fast to guess at) is
# still read, and ``needs_reseal`` says to write it again as version 2.

_SCRYPT = {"n": 2**14, "r": 8, "p": 5}


def _rest_key(pickle_key: str, version: int, salt: bytes = b"") -> bytes:
    if version == 1:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=b"liaisonbot cross-signing keys at rest").derive(
                        pickle_key.encode("utf-8"))
    return Scrypt(salt=salt, length=32, **_SCRYPT).derive(pickle_key.encode("utf-8"))


def seal(pickle_key: str, data: dict[str, Any]) -> bytes:
    """``data`` as JSON, encrypted (AES-256-GCM) with a key derived from the pickle key
    (scrypt, a random salt)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    body = AESGCM(_rest_key(pickle_key, 2, salt)).encrypt(nonce, json.dumps(data).encode(),
                                                          b"v2")
    return json.dumps({"v": 2, "salt": b64encode(salt), "nonce": b64encode(nonce),
                       "data": b64encode(body)}).encode()


def needs_reseal(blob: bytes) -> bool:
    """Whether ``blob`` was sealed the old way (version 1) and should be sealed again."""
    try:
        return int(json.loads(blob).get("v", 1)) < 2
    except (ValueError, AttributeError, TypeError):
        return False


def unseal(pickle_key: str, blob: bytes) -> dict[str, Any]:
    """What ``seal`` wrote (either version); ``SecretStorageError`` when the pickle key is not
    the one used."""
    from cryptography.exceptions import InvalidTag

    try:
        outer = json.loads(blob)
        version = int(outer.get("v", 1))
        salt = b64decode(outer["salt"]) if version >= 2 else b""
        plain = AESGCM(_rest_key(pickle_key, version, salt)).decrypt(
            b64decode(outer["nonce"]), b64decode(outer["data"]), f"v{version}".encode())
    except (ValueError, KeyError, TypeError, AttributeError, InvalidTag) as error:
        raise SecretStorageError("the saved cross-signing keys cannot be opened with "
                                 "LIAISONBOT_MATRIX_PICKLE_KEY") from error
    return dict(json.loads(plain))
