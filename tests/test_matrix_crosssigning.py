"""The bot's cross-signing identity, secret storage and device trust, checked against
independent implementations (signedjson, canonicaljson from the Synapse test deps) and the
spec's rules; the Synapse round trips are in test_matrix_identity.py."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import canonicaljson
import pytest
import signedjson.key
import signedjson.sign

from liaisonbot.chat.matrix import secret_storage as ss
from liaisonbot.chat.matrix.crosssigning import (
    Identity,
    identity_report,
    load_identity,
    save_identity,
)
from liaisonbot.chat.matrix.keys import SigningKey, canonical_json, signed_devices, verify_signed
from liaisonbot.service import messages as msg

USER = "@bot:example.org"


def _independent_verify(obj: dict, user: str, public: str) -> None:
    """signedjson (Synapse's own) verifies or raises."""
    verify_key = signedjson.key.decode_verify_key_bytes(f"ed25519:{public}",
                                                        ss.b64decode(public))
    signedjson.sign.verify_signed_json(obj, user, verify_key)


def test_canonical_json_matches_canonicaljson() -> None:
    value = {"b": [1, 2, {"z": "é€😀", "a": None}], "a": True, "ü": "\u2028 \x01"}
    assert canonical_json(value) == canonicaljson.encode_canonical_json(value)


def test_uploaded_keys_are_signed_by_the_master_key() -> None:
    identity = Identity.generate()
    body = identity.public_keys(USER)
    assert body["master_key"] == {"user_id": USER, "usage": ["master"],
                                  "keys": {identity.master.key_id: identity.master.public}}
    for name in ("self_signing_key", "user_signing_key"):
        _independent_verify(body[name], USER, identity.master.public)
        assert verify_signed(body[name], USER, identity.master.public)
        assert not verify_signed(body[name], USER, identity.self_signing.public)
    tampered = copy.deepcopy(body["self_signing_key"])
    tampered["usage"] = ["master"]
    assert not verify_signed(tampered, USER, identity.master.public)
    with pytest.raises(signedjson.sign.SignatureVerifyException):
        _independent_verify(tampered, USER, identity.master.public)


def test_signature_made_by_signedjson_verifies_here() -> None:
    key = signedjson.key.generate_signing_key("x")
    obj = signedjson.sign.sign_json({"user_id": USER, "keys": {"a": "b"}}, USER, key)
    public = ss.b64encode(key.verify_key.encode())
    signature = obj["signatures"][USER].pop("ed25519:x")
    obj["signatures"][USER][f"ed25519:{public}"] = signature
    assert verify_signed(obj, USER, public)


def _device(user: str, device_id: str) -> dict:
    return {"user_id": user, "device_id": device_id,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {f"curve25519:{device_id}": "c" * 43, f"ed25519:{device_id}": "e" * 43},
            "unsigned": {"device_display_name": "phone"}}


def test_signed_devices_follows_the_chain_master_ssk_device() -> None:
    alice = "@alice:example.org"
    ident = Identity.generate()
    keys = ident.public_keys(alice)
    signed = ident.self_signing.sign(_device(alice, "PHONE"), alice)
    _independent_verify(signed, alice, ident.self_signing.public)
    devices = {"PHONE": signed, "LAPTOP": _device(alice, "LAPTOP")}
    assert signed_devices(alice, keys["master_key"], keys["self_signing_key"],
                          devices) == {"PHONE"}
    # a self-signing key not signed by the master key trusts nothing
    stray = dict(keys["self_signing_key"], signatures={})
    assert signed_devices(alice, keys["master_key"], stray, devices) == set()
    # another user's master key does not count
    assert signed_devices("@mallory:example.org", keys["master_key"],
                          keys["self_signing_key"], devices) == set()
    # a device object changed after signing is not trusted
    changed = copy.deepcopy(signed)
    changed["keys"]["curve25519:PHONE"] = "d" * 43
    assert signed_devices(alice, keys["master_key"], keys["self_signing_key"],
                          {"PHONE": changed}) == set()
    # a signed device listed under another id is not trusted
    assert signed_devices(alice, keys["master_key"], keys["self_signing_key"],
                          {"OTHER": signed}) == set()


def test_identity_report_says_what_is_missing() -> None:
    ident = Identity.generate()
    keys = ident.public_keys(USER)
    device = _device(USER, "BOTDEV")
    answer = {"device_keys": {USER: {"BOTDEV": device}}}
    none = identity_report(answer, USER, "BOTDEV")
    assert (none.cross_signed, none.problem) == (False, msg.IDENTITY_NONE)
    answer |= {"master_keys": {USER: keys["master_key"]},
               "self_signing_keys": {USER: keys["self_signing_key"]}}
    unsigned = identity_report(answer, USER, "BOTDEV")
    assert unsigned.problem == msg.IDENTITY_NOT_SIGNED.format(device="BOTDEV")
    answer["device_keys"][USER]["BOTDEV"] = ident.self_signing.sign(device, USER)
    ok = identity_report(answer, USER, "BOTDEV")
    assert ok.cross_signed and ok.problem is None and ok.master_key == ident.master.public


# ---------------------------------------------------------------- recovery key, secret storage

def test_recovery_key_round_trip_and_checks() -> None:
    key = bytes(range(32))
    text = ss.encode_recovery_key(key)
    groups = text.split(" ")
    assert text.startswith("Es") and all(len(g) == 4 for g in groups[:-1])
    assert len(text.replace(" ", "")) == 48
    assert ss.decode_recovery_key(text) == key
    assert ss.decode_recovery_key(text.replace(" ", "")) == key
    for _ in range(20):
        k = os.urandom(32)
        assert ss.decode_recovery_key(ss.encode_recovery_key(k)) == k
    broken = text[:-1] + ("a" if text[-1] != "a" else "b")
    with pytest.raises(ss.SecretStorageError):
        ss.decode_recovery_key(broken)
    with pytest.raises(ss.SecretStorageError):
        ss.decode_recovery_key("not a key 0OIl")


def test_recovery_key_vector_from_the_base58_alphabet() -> None:
    # Independent recomputation: the 35 bytes are 0x8B 0x01, key, parity (XOR of the rest).
    key = b"\x00" * 32
    raw = bytes([0x8B, 0x01]) + key + bytes([0x8B ^ 0x01])
    number = int.from_bytes(raw, "big")
    digits = ""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    while number:
        number, rem = divmod(number, 58)
        digits = alphabet[rem] + digits
    assert ss.encode_recovery_key(key).replace(" ", "") == digits


def test_secret_storage_round_trip_and_wrong_key() -> None:
    key, other = os.urandom(32), os.urandom(32)
    stored = ss.encrypt(key, "m.cross_signing.master", "seed-value")
    assert set(stored) == {"iv", "ciphertext", "mac"}
    assert ss.b64decode(stored["iv"])[8] & 0x80 == 0  # bit 63 of the IV cleared
    assert ss.decrypt(key, "m.cross_signing.master", stored) == "seed-value"
    with pytest.raises(ss.SecretStorageError):
        ss.decrypt(other, "m.cross_signing.master", stored)
    with pytest.raises(ss.SecretStorageError):  # the name is part of the key derivation
        ss.decrypt(key, "m.cross_signing.self_signing", stored)
    description = ss.key_description(key)
    assert description["algorithm"] == "m.secret_storage.v1.aes-hmac-sha2"
    assert ss.key_matches(key, description) and not ss.key_matches(other, description)


def test_secret_storage_against_an_independent_aes_ctr_hmac() -> None:
    """Recompute the spec's algorithm with pycryptodome (another library)."""
    import hashlib
    import hmac

    from Crypto.Cipher import AES
    from Crypto.Hash import SHA256
    from Crypto.Protocol.KDF import HKDF
    from Crypto.Util import Counter

    key = os.urandom(32)
    stored = ss.encrypt(key, "m.cross_signing.user_signing", "hello secret")
    okm = HKDF(key, 64, bytes(32), SHA256, context=b"m.cross_signing.user_signing")
    aes_key, mac_key = okm[:32], okm[32:]
    ciphertext = ss.b64decode(stored["ciphertext"])
    assert hmac.new(mac_key, ciphertext, hashlib.sha256).digest() == ss.b64decode(stored["mac"])
    iv = int.from_bytes(ss.b64decode(stored["iv"]), "big")
    cipher = AES.new(aes_key, AES.MODE_CTR, counter=Counter.new(128, initial_value=iv))
    assert cipher.decrypt(ciphertext) == b"hello secret"


def test_keys_at_rest_need_the_pickle_key(tmp_path: Path) -> None:
    ident = Identity.generate()
    save_identity(tmp_path, "pickle-1", ident)
    raw = (tmp_path / "cross_signing.json").read_bytes()
    for usage_seed in ident.seeds().values():
        assert usage_seed.encode() not in raw
    assert (tmp_path / "cross_signing.json").stat().st_mode & 0o077 == 0
    back = load_identity(tmp_path, "pickle-1")
    assert back is not None and back.master.public == ident.master.public
    assert back.self_signing.public == ident.self_signing.public
    with pytest.raises(ss.SecretStorageError):
        load_identity(tmp_path, "pickle-2")
    assert load_identity(tmp_path / "none", "pickle-1") is None


def test_signing_key_public_matches_signedjson() -> None:
    seed = os.urandom(32)
    ours = SigningKey(seed)
    theirs = signedjson.key.decode_signing_key_base64("ed25519", "k", ss.b64encode(seed))
    assert ours.public == ss.b64encode(theirs.verify_key.encode())


# ---------------------------------------------------------------- withheld keys, told once

async def test_withheld_key_sentence_once_per_session(testbot) -> None:  # type: ignore[no-untyped-def]
    from liaisonbot.service.desk import Actor

    actor = Actor("console:alice", "console:icc", name="Alice")
    out = testbot.out

    async def tell(event: str, code: str | None, session: str | None) -> str:
        start = len(out)
        await testbot.core.desk.tell_unreadable(actor, event, withheld=code, session=session)
        await testbot.core.outbox.drain()
        return "\n".join(out[start:])

    first = await tell("$e1", "m.unverified", "S1")
    assert msg.WITHHELD["m.unverified"].format(sender="Alice") in first
    assert await tell("$e2", "m.unverified", "S1") == ""  # same key session: said already
    assert await tell("$e1", "m.unverified", "S1") == ""  # the same event again
    assert msg.WITHHELD["m.blacklisted"].format(sender="Alice") in await tell(
        "$e3", "m.blacklisted", "S2")
    assert msg.UNDECRYPTABLE in await tell("$e4", None, None)  # the generic notice stays
    assert msg.UNDECRYPTABLE in await tell("$e5", "m.no_olm", "S3")  # no sentence of its own


def test_a_malformed_recovery_key_is_refused_in_one_sentence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from liaisonbot.chat.matrix.session import Credentials, MatrixSetupError

    monkeypatch.setenv("LIAISONBOT_MATRIX_PICKLE_KEY", STRONG_PICKLE)
    monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", "t")
    good = ss.encode_recovery_key(os.urandom(32))
    monkeypatch.setenv("LIAISONBOT_MATRIX_RECOVERY_KEY", good)
    assert Credentials.from_env().recovery_key == good
    monkeypatch.setenv("LIAISONBOT_MATRIX_RECOVERY_KEY", good[:-2])
    with pytest.raises(MatrixSetupError) as caught:
        Credentials.from_env()
    assert str(caught.value).startswith("LIAISONBOT_MATRIX_RECOVERY_KEY: the recovery key is "
                                        "not a valid Matrix recovery key")
    assert good[:-2] not in str(caught.value)  # never echoes the secret


STRONG_PICKLE = "5f0c9a7e1d2b4c8f9e3a6b7d0c1e2f4a"


@pytest.mark.parametrize("key", ["a", "p" * 64, "hunter2hunter2hunter2hunter2hunt",
                                 "0123456789abcdef0123456789abcde"])
def test_a_weak_or_short_pickle_key_is_refused_in_one_sentence(
        monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """The pickle key alone guards the crypto store and the sealed cross-signing keys: a
    word, a repeated character or fewer than 32 characters is refused at start (and by
    ``check-config``), in one sentence saying what to use."""
    from liaisonbot.chat.matrix.session import Credentials, MatrixSetupError
    from liaisonbot.config import weak_pickle_key

    monkeypatch.setenv("LIAISONBOT_MATRIX_PICKLE_KEY", key)
    monkeypatch.setenv("LIAISONBOT_MATRIX_ACCESS_TOKEN", "t")
    if len(key) >= 32 and len(set(key)) >= 12:
        assert weak_pickle_key(key) is None  # long and varied enough: accepted
        assert Credentials.from_env().pickle_key == key
        return
    with pytest.raises(MatrixSetupError) as caught:
        Credentials.from_env()
    said = str(caught.value)
    assert said.count(". ") == 0 and "openssl rand -hex 32" in said
    assert len(key) < 4 or key not in said  # the secret itself is never echoed
    monkeypatch.setenv("LIAISONBOT_MATRIX_PICKLE_KEY", STRONG_PICKLE)
    assert Credentials.from_env().pickle_key == STRONG_PICKLE


def test_keys_sealed_with_the_old_kdf_are_read_and_sealed_again_with_scrypt(
        tmp_path: Path) -> None:
    """Version 1 (HKDF, no salt) still opens; loading it writes version 2 (scrypt with a
    salt), which a wrong pickle key cannot open either."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from liaisonbot.chat.matrix.crosssigning import KEYS_FILE, Identity

    ident = Identity.generate()
    nonce = os.urandom(12)
    old = AESGCM(ss._rest_key("pickle-1", 1)).encrypt(nonce, json.dumps(ident.seeds()).encode(),
                                                      b"v1")
    (tmp_path / KEYS_FILE).write_bytes(json.dumps(
        {"v": 1, "nonce": ss.b64encode(nonce), "data": ss.b64encode(old)}).encode())
    assert ss.needs_reseal((tmp_path / KEYS_FILE).read_bytes())
    back = load_identity(tmp_path, "pickle-1")
    assert back is not None and back.seeds() == ident.seeds()
    blob = (tmp_path / KEYS_FILE).read_bytes()
    assert json.loads(blob)["v"] == 2 and "salt" in json.loads(blob)
    assert not ss.needs_reseal(blob)
    assert load_identity(tmp_path, "pickle-1").seeds() == ident.seeds()  # type: ignore[union-attr]
    with pytest.raises(ss.SecretStorageError):
        load_identity(tmp_path, "pickle-2")


def test_the_data_dir_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """``data_dir`` 0700 and everything in it 0600 (the session's token, nio's store, the
    sealed keys), even when the process runs with umask 022."""
    from liaisonbot.chat.matrix.session import Credentials, lock_down, make_client
    from liaisonbot.config import MatrixSettings

    old = os.umask(0o022)
    try:
        data_dir = tmp_path / "matrix"
        client = make_client(MatrixSettings(enabled=True, homeserver="http://127.0.0.1:1",
                                            user_id="@bot:example.org",
                                            data_dir=str(data_dir)),
                             Credentials(pickle_key=STRONG_PICKLE, access_token="t"))
        assert (data_dir.stat().st_mode & 0o777) == 0o700
        (data_dir / "store.db").write_bytes(b"x")  # as nio's store appears, at 0644
        (data_dir / "sub").mkdir()
        (data_dir / "sub" / "f").write_bytes(b"y")
        assert ((data_dir / "store.db").stat().st_mode & 0o777) == 0o644
        lock_down(data_dir)
        assert ((data_dir / "store.db").stat().st_mode & 0o777) == 0o600
        assert ((data_dir / "sub").stat().st_mode & 0o777) == 0o700
        assert ((data_dir / "sub" / "f").stat().st_mode & 0o777) == 0o600
        del client
    finally:
        os.umask(old)
