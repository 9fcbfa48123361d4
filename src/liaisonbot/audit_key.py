"""The key that signs audit checkpoints (``domain.checkpoint``).

``LIAISONBOT_AUDIT_SIGNING_KEY`` when set. Otherwise: a deployment whose config has an
``[audit]`` table has none (``run`` refuses to start, ``audit`` commands say so), and one
without (the console, a demo) uses a key generated on first use and kept in
``[audit] key_file`` (default ``var/audit-signing.key``, created with mode 0600): it proves
only what that file's secrecy proves, which the README says.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from liaisonbot.config import ENV_AUDIT_SIGNING_KEY, AuditSettings
from liaisonbot.domain.checkpoint import key_from_seed, seed_text


class NoSigningKey(RuntimeError):
    """``[audit]`` is configured but the key is not in the environment."""


def signing_key(audit: AuditSettings) -> Ed25519PrivateKey:
    if audit.signing_key:
        return key_from_seed(audit.signing_key)
    if audit.configured:
        raise NoSigningKey(f"{ENV_AUDIT_SIGNING_KEY} is not set (with [audit] the "
                           "checkpoints' key comes only from the environment)")
    path = Path(audit.key_file)
    try:
        return key_from_seed(path.read_text(encoding="ascii"))
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it meanwhile
        return key_from_seed(path.read_text(encoding="ascii"))
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(seed_text(key) + "\n")
    return key
