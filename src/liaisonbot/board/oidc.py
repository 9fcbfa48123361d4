"""OpenID Connect sign-in with Authlib: authorization code flow with PKCE (S256), ``state`` and
``nonce``; the ID token's signature is checked against the issuer's JWKS, then its issuer,
audience, expiry and nonce. No JWT is parsed by hand."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from liaisonbot.config import WebSettings
from liaisonbot.service.ports import Clock

log = logging.getLogger(__name__)
CALLBACK_PATH = "/board/callback"
#: Clock skew allowed between the issuer and us when checking exp/iat.
LEEWAY_SECONDS = 60


class SignInError(Exception):
    """The sign-in could not be completed; the message is for the log, never for the user."""


class IssuerUnreachable(SignInError):
    """Discovery, the JWKS or the token endpoint could not be reached."""


@dataclass(frozen=True)
class Started:
    url: str
    state: str
    nonce: str
    verifier: str


class OidcClient:
    """One issuer, one client. Discovery and the JWKS are fetched once and kept; an ID token
    signed with a key id we do not know makes one fresh JWKS fetch (key rotation)."""

    def __init__(self, web: WebSettings, clock: Clock, *, timeout: float = 10.0) -> None:
        self.web = web
        self.clock = clock
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None

    @property
    def redirect_uri(self) -> str:
        return self.web.base_url + CALLBACK_PATH

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                response = await http.get(url)
                response.raise_for_status()
                data = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise IssuerUnreachable(f"{url}: {type(error).__name__}") from None
        if not isinstance(data, dict):
            raise IssuerUnreachable(f"{url}: not a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            data = await self._get_json(self.web.oidc_issuer
                                        + "/.well-known/openid-configuration")
            if str(data.get("issuer", "")).rstrip("/") != self.web.oidc_issuer:
                raise SignInError("the discovery document names another issuer")
            missing = [key for key in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                       if not isinstance(data.get(key), str)]
            if missing:
                raise SignInError("the discovery document lacks " + ", ".join(missing))
            self._metadata = data
        return self._metadata

    async def _key_set(self, *, fresh: bool = False) -> KeySet:
        if self._jwks is None or fresh:
            self._jwks = await self._get_json((await self.metadata())["jwks_uri"])
        return KeySet.import_key_set(self._jwks)  # type: ignore[arg-type]

    def _client(self, **extra: Any) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.web.client_id, client_secret=self.web.client_secret,
            token_endpoint_auth_method=self.web.token_auth, scope=self.web.scope,
            redirect_uri=self.redirect_uri, code_challenge_method="S256",
            timeout=self.timeout, **extra)

    async def start(self) -> Started:
        """The authorization URL to send the browser to, and what must come back with it."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        async with self._client() as client:
            url, _ = client.create_authorization_url(endpoint, state=state, nonce=nonce,
                                                     code_verifier=verifier)
        return Started(url, state, nonce, verifier)

    async def finish(self, *, code: str, verifier: str, nonce: str) -> dict[str, Any]:
        """Redeem ``code`` and return the checked ID token's claims."""
        endpoint = (await self.metadata())["token_endpoint"]
        try:
            async with self._client() as client:
                token = await client.fetch_token(endpoint, grant_type="authorization_code",
                                                 code=code, code_verifier=verifier)
        except httpx.HTTPError as error:
            raise IssuerUnreachable(f"token endpoint: {type(error).__name__}") from None
        except Exception as error:  # Authlib's OAuthError and friends: the issuer said no
            raise SignInError(f"token endpoint refused: {type(error).__name__}") from None
        if "id_token" not in token:
            raise SignInError("the token response has no id_token")
        return await self.check_id_token(token["id_token"], nonce=nonce,
                                         access_token=token.get("access_token"))

    async def check_id_token(self, id_token: str, *, nonce: str,
                             access_token: str | None = None) -> dict[str, Any]:
        metadata = await self.metadata()
        algorithms = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in algorithms if a != "none"])
        try:
            try:
                decoded = jwt.decode(id_token, await self._key_set(), registry=registry)
            except InvalidKeyIdError:  # a key we have not seen: the issuer may have rotated
                decoded = jwt.decode(id_token, await self._key_set(fresh=True),
                                     registry=registry)
            options = {"iss": {"essential": True, "value": self.web.oidc_issuer},
                       "aud": {"essential": True, "value": self.web.client_id},
                       "exp": {"essential": True}, "sub": {"essential": True}}
            params = {"nonce": nonce, "client_id": self.web.client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(now=int(self.clock.now().timestamp()), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as error:
            raise SignInError(f"ID token refused: {type(error).__name__}: {error}") from None
        return dict(claims)
