"""A small OpenID provider in Python for the sign-in refusals a real provider will not produce
on demand: it signs ID tokens with its own key (or a stranger's), for any audience, nonce and
expiry the test sets. Discovery, JWKS and the token endpoint are real HTTP on loopback (port 0);
the token endpoint checks the client's secret (basic or post) and the PKCE verifier."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey


@dataclass
class Grant:
    """What the authorization endpoint was asked, and what the token endpoint will answer."""

    challenge: str
    nonce: str
    claims: dict[str, Any]


@dataclass
class FakeIssuer:
    client_id: str
    client_secret: str
    clock_now: Any  # () -> datetime
    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "good"}))
    stranger: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "good"}))
    grants: dict[str, Grant] = field(default_factory=dict)
    #: The next ID token's changes: {"aud": …, "exp_delta": seconds, "nonce": …, "sign_with": "stranger"}.
    tamper: dict[str, Any] = field(default_factory=dict)
    token_calls: list[dict[str, Any]] = field(default_factory=list)
    #: Changes to the discovery document (a None value removes the key).
    discovery_changes: dict[str, Any] = field(default_factory=dict)
    runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_post("/token", self._token)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def authorize(self, params: dict[str, str], claims: dict[str, Any]) -> str:
        """Stand in for the user signing in: record the request, return a code."""
        assert params["client_id"] == self.client_id
        assert params["code_challenge_method"] == "S256"
        code = f"code-{len(self.grants) + 1}"
        self.grants[code] = Grant(params["code_challenge"], params["nonce"], claims)
        return code

    async def _discovery(self, _request: web.Request) -> web.Response:
        document = {
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "end_session_endpoint": f"{self.url}/logout",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"]}
        document.update(self.discovery_changes)
        return web.json_response({k: v for k, v in document.items() if v is not None})

    async def _jwks(self, _request: web.Request) -> web.Response:
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    def _client_ok(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == (self.client_id, self.client_secret)
        return (form.get("client_id"), form.get("client_secret")) == (self.client_id,
                                                                     self.client_secret)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_calls.append({"form": form, "basic": "Authorization" in request.headers})
        if not self._client_ok(request, form):  # type: ignore[arg-type]
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self.grants.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                             ).rstrip(b"=").decode()
        if grant is None or challenge != grant.challenge:
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(self.clock_now().timestamp())
        tamper, self.tamper = self.tamper, {}
        claims = {"iss": tamper.get("iss", self.url), "aud": tamper.get("aud", self.client_id),
                  "iat": now, "exp": now + tamper.get("exp_delta", 300),
                  "nonce": tamper.get("nonce", grant.nonce), **grant.claims}
        key = self.stranger if tamper.get("sign_with") == "stranger" else self.key
        token = jwt.encode({"alg": "RS256", "kid": "good"}, claims, key)
        return web.json_response({"access_token": "at-1", "token_type": "Bearer",
                                  "expires_in": 300, "id_token": token})


def now_of(clock: Any) -> Any:
    def now() -> datetime:
        return clock.now()
    return now
