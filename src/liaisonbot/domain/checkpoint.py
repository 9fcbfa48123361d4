"""Signed checkpoints over every request's audit chain (``lbcp1:`` words).

A checkpoint is what partners keep outside this deployment's database, so that an insider who
rewrites history *and* re-chains it consistently is still found. It seals:

* ``upto``: the highest history id it covers. Every request's entries with ids up to it are
  the prefix of that request's chain it seals (ids grow in commit order: SQLite has one
  writer; on PostgreSQL the checkpoint is taken under ``LOCK TABLE history IN SHARE MODE``,
  so no entry with a lower id can commit later).
* one Merkle **leaf per request** with entries up to ``upto``, in request id order:
  ``(request id, number of its entries up to upto, hash of the last of them)``; the root is
  RFC 9162's Merkle Tree Hash: leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ l ‖ r).
* the counts (requests, entries), the highest request id, the moment;
* a **locator**: per bucket (request id mod ``BUCKETS``) the sums Σf and Σid·f mod p of the
  leaves' fingerprints f (a leaf hash's first 8 bytes, mod p = 2⁶¹−1). The root is the
  commitment; the locator only names what changed: when one request of a bucket changed,
  was deleted or forged, the differences of the two sums give its id (Σid·f / Σf). Two or
  more in one bucket are still found (the root), but not named.
* the signing key's id (first 8 bytes of SHA-256 of its public key) and an Ed25519 signature.

Binary form, big-endian, then URL-safe base64 without padding after ``lbcp1:``:
version (1) · moment (8, Unix seconds) · upto (8) · entries (8) · requests (4) · highest
request id (8) · root (32) · locator (BUCKETS × 16) · key id (8) · signature (64) =
205 bytes, 280 characters with the prefix.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PREFIX = "lbcp1:"
VERSION = 1
BUCKETS = 4
P = 2**61 - 1
_BODY = struct.Struct(">BqQQIQ32s")
_LOCATOR = struct.Struct(">" + "QQ" * BUCKETS)
_SIGNED_CONTEXT = b"liaisonbot audit checkpoint v1\n"
SIZE = _BODY.size + _LOCATOR.size + 8 + 64


class CheckpointError(ValueError):
    """A word that is not a checkpoint, or whose signature does not hold."""


@dataclass(frozen=True)
class Leaf:
    """One request's sealed chain prefix."""

    request_id: int
    entries: int
    end_hash: str  # hex SHA-256 (the last entry's stored hash)

    def data(self) -> bytes:
        return struct.pack(">QI", self.request_id, self.entries) + bytes.fromhex(self.end_hash)

    def hash(self) -> bytes:
        return hashlib.sha256(b"\x00" + self.data()).digest()


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 Merkle Tree Hash over already hashed leaves."""
    n = len(leaf_hashes)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaf_hashes[:k])
                          + merkle_root(leaf_hashes[k:])).digest()


def locator(leaves: Iterable[Leaf]) -> tuple[tuple[int, int], ...]:
    sums = [[0, 0] for _ in range(BUCKETS)]
    for leaf in leaves:
        f = int.from_bytes(leaf.hash()[:8], "big") % P
        cell = sums[leaf.request_id % BUCKETS]
        cell[0] = (cell[0] + f) % P
        cell[1] = (cell[1] + leaf.request_id * f) % P
    return tuple((a, b) for a, b in sums)


@dataclass(frozen=True)
class Statement:
    """What a checkpoint seals (unsigned)."""

    at: datetime
    upto: int
    entries: int
    requests: int
    highest_request: int
    root: bytes
    locator: tuple[tuple[int, int], ...]

    @classmethod
    def over(cls, leaves: Sequence[Leaf], upto: int, at: datetime) -> Statement:
        ordered = sorted(leaves, key=lambda leaf: leaf.request_id)
        return cls(at=at.astimezone(UTC).replace(microsecond=0), upto=upto,
                   entries=sum(leaf.entries for leaf in ordered), requests=len(ordered),
                   highest_request=ordered[-1].request_id if ordered else 0,
                   root=merkle_root([leaf.hash() for leaf in ordered]),
                   locator=locator(ordered))

    def body(self) -> bytes:
        flat = [n for pair in self.locator for n in pair]
        return _BODY.pack(VERSION, int(self.at.timestamp()), self.upto, self.entries,
                          self.requests, self.highest_request, self.root) + _LOCATOR.pack(*flat)

    def located(self, now: Statement) -> tuple[list[int], list[int]]:
        """Comparing the locator with ``now``'s (the same leaves recomputed from the
        database): the request ids named (one per bucket that changed), and the buckets
        where more than one request changed (not nameable)."""
        named: list[int] = []
        unnamed: list[int] = []
        for bucket, ((a0, b0), (a1, b1)) in enumerate(zip(self.locator, now.locator,
                                                          strict=True)):
            da, db = (a1 - a0) % P, (b1 - b0) % P
            if da == 0 and db == 0:
                continue
            rid = db * pow(da, P - 2, P) % P if da else -1
            if 0 < rid <= max(self.highest_request, now.highest_request) \
                    and rid % BUCKETS == bucket:
                named.append(rid)
            else:
                unnamed.append(bucket)
        return sorted(named), unnamed


def key_id(public: Ed25519PublicKey) -> bytes:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:8]


def key_from_seed(text: str) -> Ed25519PrivateKey:
    """The signing key from URL-safe base64 of its 32-byte seed; ValueError otherwise."""
    try:
        seed = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not URL-safe base64") from None
    if len(seed) != 32:
        raise ValueError(f"{len(seed)} bytes instead of a 32-byte Ed25519 seed")
    return Ed25519PrivateKey.from_private_bytes(seed)


def seed_text(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fingerprint(public: Ed25519PublicKey) -> str:
    return key_id(public).hex()


def sign(statement: Statement, key: Ed25519PrivateKey) -> str:
    body = statement.body() + key_id(key.public_key())
    word = body + key.sign(_SIGNED_CONTEXT + body)
    return PREFIX + base64.urlsafe_b64encode(word).decode().rstrip("=")


def read(word: str, public: Ed25519PublicKey) -> Statement:
    """The statement of a checkpoint signed by ``public``; ``CheckpointError`` (one
    sentence) when it is not a checkpoint or its signature fails."""
    text = word.strip()
    if not text.startswith(PREFIX):
        raise CheckpointError(f"{_short(text)} is not a checkpoint (it must start with "
                              f"{PREFIX})")
    raw_text = text[len(PREFIX):]
    try:
        raw = base64.urlsafe_b64decode(raw_text + "=" * (-len(raw_text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != SIZE or raw[0] != VERSION:
        raise CheckpointError(f"{_short(text)} is not a readable checkpoint (damaged or cut "
                              "when it was copied)")
    body, signature = raw[:-64], raw[-64:]
    if body[-8:] != key_id(public):
        raise CheckpointError(f"checkpoint {_short(text)} was not signed by this "
                              f"deployment's audit key ({fingerprint(public)}): refused")
    try:
        public.verify(signature, _SIGNED_CONTEXT + body)
    except InvalidSignature:
        raise CheckpointError(f"checkpoint {_short(text)} has a signature that does not "
                              "hold (it was altered): refused") from None
    _version, at, upto, entries, requests, highest, root = _BODY.unpack_from(body)
    flat = _LOCATOR.unpack_from(body, _BODY.size)
    return Statement(at=datetime.fromtimestamp(at, UTC), upto=upto, entries=entries,
                     requests=requests, highest_request=highest, root=root,
                     locator=tuple((flat[2 * i], flat[2 * i + 1]) for i in range(BUCKETS)))


def _short(text: str) -> str:
    return repr(text[:24] + "…" if len(text) > 24 else text)
