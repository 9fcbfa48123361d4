"""Start the real OpenID Provider (node-oidc-provider, pinned in tests/support/oidc) on a
loopback port for the case board's browser tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent / "oidc"


def ensure_installed() -> None:
    """``npm ci`` from the committed lockfile when node_modules is missing."""
    if (HERE / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the OpenID Provider tests (apt-get install npm)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)


@contextmanager
def oidc_provider(*, port: int, redirect_uri: str, client_id: str, client_secret: str,
                  accounts: dict[str, dict[str, Any]],
                  token_auth: str = "client_secret_basic") -> Iterator[str]:
    """Run the provider until the block ends; yields its issuer URL."""
    ensure_installed()
    env = {**os.environ, "PORT": str(port), "REDIRECT_URI": redirect_uri,
           "CLIENT_ID": client_id, "CLIENT_SECRET": client_secret, "TOKEN_AUTH": token_auth,
           "ACCOUNTS": json.dumps(accounts), "NODE_ENV": "test"}
    process = subprocess.Popen(["node", "server.mjs"], cwd=HERE, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # blocks until the provider prints or exits
            lines.append(line)
            if line.startswith("ready "):
                break
        else:
            raise RuntimeError("the OpenID Provider did not start:\n" + "".join(lines))
        yield line.split()[1]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
