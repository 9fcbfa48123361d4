"""``[web]``: validated once, secrets only from the environment, fail closed."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import make_settings
from liaisonbot.config import ConfigError
from support.board import SESSION_KEY

WEB = {"enabled": True, "base_url": "https://liaison.example.org",
       "oidc_issuer": "https://login.example.org/realms/liaison", "client_id": "liaisonbot",
       "office_claim": "liaison_offices"}


def problems(web: dict[str, Any]) -> list[str]:
    try:
        make_settings("sqlite+aiosqlite:///x.db", web=web)
    except ConfigError as error:
        return error.problems
    return []


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIAISONBOT_WEB_CLIENT_SECRET", "s")
    monkeypatch.setenv("LIAISONBOT_WEB_SESSION_KEY", SESSION_KEY)


def test_sound_web_section(secrets: None) -> None:
    settings = make_settings("sqlite+aiosqlite:///x.db", web=WEB)
    assert settings.web.enabled and settings.web.secure
    assert settings.web.member_claim == "liaison_members"
    assert settings.web.token_auth == "client_secret_basic" and settings.web.session_minutes == 60
    assert "s" not in repr(settings.web).split("client_secret=")[-1][:3]  # secrets not in repr


def test_missing_secrets_fail_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIAISONBOT_WEB_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("LIAISONBOT_WEB_SESSION_KEY", raising=False)
    found = problems(WEB)
    assert any("LIAISONBOT_WEB_CLIENT_SECRET is not set" in p for p in found)
    assert any("LIAISONBOT_WEB_SESSION_KEY is not set" in p for p in found)
    monkeypatch.setenv("LIAISONBOT_WEB_SESSION_KEY", "too-short")
    assert any("is not a Fernet key" in p for p in problems(WEB))


def test_disabled_board_needs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIAISONBOT_WEB_CLIENT_SECRET", raising=False)
    assert problems({**WEB, "enabled": False}) == []


@pytest.mark.parametrize(("change", "key"), [
    ({"base_url": "http://liaison.example.org"}, "web.base_url"),
    ({"oidc_issuer": "ftp://x"}, "web.oidc_issuer"),
    ({"client_id": ""}, "web.client_id"),
    ({"token_auth": "private_key_jwt"}, "web.token_auth"),
    ({"session_minutes": 5000}, "web.session_minutes"),
    ({"scope": "profile"}, "web.scope"),
    ({"surprise": 1}, "web.surprise"),
])
def test_bad_values_are_named(secrets: None, change: dict[str, Any], key: str) -> None:
    assert any(p.startswith(key + ":") for p in problems({**WEB, **change}))


def test_plain_http_only_on_loopback(secrets: None) -> None:
    assert problems({**WEB, "base_url": "http://127.0.0.1:3000",
                     "oidc_issuer": "http://localhost:9000"}) == []
