"""Self-tests for the Element harness's protocol (tests/support/element.py), no homeserver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .element import ELEMENT_DIR, ElementClient, ElementError, require_element


@pytest.fixture(autouse=True)
def _element() -> None:
    require_element()


def test_lockfile_pins_the_engine() -> None:
    lock = json.loads((ELEMENT_DIR / "package-lock.json").read_text(encoding="utf-8"))
    packages = lock["packages"]
    assert packages["node_modules/matrix-js-sdk"]["version"].startswith("43.")
    wasm = packages["node_modules/@matrix-org/matrix-sdk-crypto-wasm"]["version"]
    wanted = packages["node_modules/matrix-js-sdk"]["dependencies"][
        "@matrix-org/matrix-sdk-crypto-wasm"]
    assert wanted.startswith("^") and wasm.split(".")[0] == wanted[1:].split(".")[0]
    ignored = (ELEMENT_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert "node_modules/" in ignored


async def test_errors_come_back_as_exceptions_and_the_process_ends(tmp_path: Path) -> None:
    client = await ElementClient.start(tmp_path)
    try:
        with pytest.raises(ElementError, match="unknown command nope"):
            await client.call("nope")
        with pytest.raises(ElementError, match='use "all" or "only_signed"'):
            await client.call("set_isolation_mode", mode="sometimes")
        with pytest.raises(ElementError, match="not logged in"):
            await client.call("bootstrap_cross_signing")
        assert client.events() == [] and client.to_device() == []
    finally:
        await client.close()
    assert client._proc.returncode == 0
    with pytest.raises(ElementError, match="not running"):
        await client.call("own_identity")
