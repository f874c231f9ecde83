"""Single sign-on for the console with an OpenID Connect provider (authorization code + PKCE).

The flow's state, nonce and PKCE verifier travel in a short-lived cookie signed by the server,
so no server-side store is needed and any node can finish a sign-in another began. The ID
token is trusted only when signed with one of the provider's published asymmetric keys (RS256
or ES256, never "none" or a shared secret) and issued to us, by the provider, for this flow.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import jwt

from signalling.config import Settings
from signalling.safejson import parse_json

ALGORITHMS = ["RS256", "ES256"]
FLOW_AUDIENCE = "scenelink:oidc-flow"
FLOW_TTL_S = 600
CLOCK_SKEW_S = 30
DISCOVERY_TTL_S = 3600
JWKS_REFETCH_S = 10  # an unknown key id refetches the keys (rotation), at most this often
TIMEOUT_S = 10


class SignInRefused(Exception):
    """The provider's answer does not prove who this is; the reason is loggable."""


class ProviderUnreachable(Exception):
    """The provider could not be asked (down, slow, or answering nonsense)."""


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
RESERVED_NAMES = frozenset({"caller", "anonymous", "officer-link", "system"})  # audit actors


@dataclass(frozen=True, slots=True)
class Flow:
    """One sign-in in progress, as the browser carries it between us and the provider."""

    state: str
    nonce: str
    redirect_uri: str
    verifier: str = field(repr=False)

    @classmethod
    def start(cls, redirect_uri: str) -> Flow:
        return cls(
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(24),
            redirect_uri,
            secrets.token_urlsafe(48),
        )

    @property
    def challenge(self) -> str:
        """PKCE S256: only who holds the verifier can redeem the code."""
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class Identity:
    """An individual, as the provider vouches for them, with the SceneLink roles mapped."""

    username: str
    subject: str
    roles: tuple[str, ...]
    groups: tuple[str, ...]


class OidcClient:
    def __init__(self, settings: Settings, flow_secret: bytes) -> None:
        assert settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret
        self.provider_name = settings.oidc_provider_name
        self._issuer = settings.oidc_issuer
        self._client_id = settings.oidc_client_id
        self._client_secret = settings.oidc_client_secret.get_secret_value()
        self._scopes = settings.oidc_scopes
        self._role_claim = settings.oidc_role_claim
        self._role_map = settings.oidc_role_map
        self._flow_secret = flow_secret
        self._discovery: dict[str, Any] = {}
        self._discovered_at = 0.0
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._keys_at: float | None = None  # when the JWKS was last fetched

    # -- the flow cookie ---------------------------------------------------------------

    def seal(self, flow: Flow) -> str:
        now = int(time.time())
        payload = {
            "aud": FLOW_AUDIENCE,
            "iat": now,
            "exp": now + FLOW_TTL_S,
            "state": flow.state,
            "nonce": flow.nonce,
            "verifier": flow.verifier,
            "redirect_uri": flow.redirect_uri,
        }
        return jwt.encode(payload, self._flow_secret, algorithm="HS256")

    def unseal(self, value: str | None, state: str) -> Flow:
        """The flow this browser began, if the provider sent it back with the same state."""
        if not value:
            raise SignInRefused("no sign-in in progress in this browser")
        try:
            payload = jwt.decode(
                value, self._flow_secret, algorithms=["HS256"], audience=FLOW_AUDIENCE
            )
        except jwt.InvalidTokenError as exc:
            raise SignInRefused(f"sign-in state unusable: {exc}") from None
        if not hmac.compare_digest(str(payload["state"]), state):
            raise SignInRefused("state does not match the sign-in this browser began")
        return Flow(
            payload["state"], payload["nonce"], payload["redirect_uri"], payload["verifier"]
        )

    # -- the provider ------------------------------------------------------------------

    async def authorization_url(self, flow: Flow) -> str:
        endpoint = str((await self._metadata())["authorization_endpoint"])
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": flow.redirect_uri,
                "scope": " ".join(self._scopes),
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": flow.challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def sign_in(self, code: str, flow: Flow) -> Identity:
        """Redeem the code, check the ID token, and say who this is and what they may do."""
        token_endpoint = str((await self._metadata())["token_endpoint"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
        }
        # client_secret_basic: RFC 6749 has the id and secret form-encoded first.
        auth = aiohttp.encode_basic_auth(
            quote(self._client_id, safe=""), quote(self._client_secret, safe="")
        )
        status, answer = await _request(
            "POST", token_endpoint, data=form, headers={"Authorization": auth}
        )
        if status != 200:
            raise SignInRefused(f"token endpoint refused the code ({answer.get('error', status)})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInRefused("token endpoint sent no ID token")
        claims = await self._verify(id_token, flow.nonce)
        username = str(claims.get("preferred_username") or claims["sub"])
        if not SAFE_NAME.fullmatch(username) or username.casefold() in RESERVED_NAMES:
            # Names appear in the audit trail: nothing that could pass for a link or a role.
            raise SignInRefused(
                "the provider's username is empty, too long, reserved or has odd characters"
            )
        groups = self._groups(claims)
        roles = sorted({role for group in groups for role in self._role_map.get(group, [])})
        return Identity(username, str(claims["sub"]), tuple(roles), groups)

    async def _verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
            if header.get("alg") not in ALGORITHMS:
                raise SignInRefused(f"ID token algorithm {header.get('alg')!r} not accepted")
            claims: dict[str, Any] = jwt.decode(
                id_token,
                await self._key(header.get("kid")),
                algorithms=ALGORITHMS,
                audience=self._client_id,
                issuer=self._issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "nonce"]},
            )
        except jwt.InvalidTokenError as exc:
            raise SignInRefused(f"ID token refused: {exc}") from None
        if not hmac.compare_digest(str(claims["nonce"]), nonce):
            raise SignInRefused("ID token was issued for another sign-in (nonce)")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self._client_id:
            raise SignInRefused("ID token was issued to another party (azp)")
        return claims

    def _groups(self, claims: dict[str, Any]) -> tuple[str, ...]:
        """The role claim's values; a dotted name reaches into an object
        (``realm_access.roles``)."""
        value: Any = claims
        for part in self._role_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        return tuple(v for v in values if isinstance(v, str))

    async def _metadata(self) -> dict[str, Any]:
        if time.monotonic() - self._discovered_at > DISCOVERY_TTL_S or not self._discovery:
            url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            status, document = await _request("GET", url)
            if status != 200 or document.get("issuer") != self._issuer:
                raise ProviderUnreachable("discovery document missing or for another issuer")
            self._discovery, self._discovered_at = document, time.monotonic()
        return self._discovery

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        stale = self._keys_at is None or time.monotonic() - self._keys_at > JWKS_REFETCH_S
        if kid not in self._keys and stale:
            status, document = await _request("GET", str((await self._metadata())["jwks_uri"]))
            if status != 200:
                raise ProviderUnreachable(f"JWKS answered HTTP {status}")
            try:
                keys = jwt.PyJWKSet.from_dict(document).keys
            except jwt.PyJWKSetError as exc:
                raise ProviderUnreachable(f"unusable JWKS: {exc}") from None
            self._keys = {k.key_id: k for k in keys if k.public_key_use in (None, "sig")}
            self._keys_at = time.monotonic()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        try:
            return self._keys[kid]
        except KeyError:
            raise SignInRefused(
                "ID token signed with a key the provider does not publish"
            ) from None


async def _request(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """One call to the provider: its status and JSON answer (empty if it sent none)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
            http.request(method, url, allow_redirects=False, **kwargs) as response,
        ):
            try:
                body = await response.json(content_type=None, loads=parse_json)
            except ValueError:
                body = None
            return response.status, body if isinstance(body, dict) else {}
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ProviderUnreachable(f"{type(exc).__name__} from {url}") from None
