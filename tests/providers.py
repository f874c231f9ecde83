"""Stand-ins for the services SceneLink calls out to, run by the tests as real HTTP servers:
each checks a request as the real service would and keeps what it accepted."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CLIENT_ID = "scenelink-console"
CLIENT_SECRET = "client-secret-shared-with-the-provider"
WEBHOOK_SECRET = "webhook-shared-secret"


class Receiver:
    """A provider stand-in: answers ``status`` after ``delay`` once the request passes
    ``check`` (which names what is wrong, or None), and keeps what it accepted."""

    def __init__(self, check: Callable[[web.Request, bytes], str | None]) -> None:
        self.check = check
        self.status = 201
        self.delay = 0.0
        self.accepted: list[dict[str, Any]] = []
        self.refusals: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = self.check(request, body)
        if problem is not None:
            self.refusals.append(problem)
            return web.json_response({"errors": [{"message": problem}]}, status=403)
        await asyncio.sleep(self.delay)
        if 200 <= self.status < 300:
            self.accepted.append(json.loads(body))
        return web.json_response({"id": "n-1"}, status=self.status)

    def app(self, path: str) -> web.Application:
        app = web.Application()
        app.router.add_post(path, self.handle)
        return app

    def link_path(self, index: int) -> str:
        """The caller link (its path) in the ``index``-th message a webhook accepted."""
        text = str(self.accepted[index]["text"])
        return text[text.index("/c/") :]


def webhook_check(request: web.Request, body: bytes) -> str | None:
    """What the force's gateway checks: the body's HMAC-SHA256 with the shared secret."""
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(request.headers.get("X-SceneLink-Signature", ""), expected):
        return "bad signature"
    return None


class Provider:
    """An identity provider that checks what a real one checks (client secret, redirect URI,
    PKCE) and issues the ID token ``claims``, signed by ``sign`` (both changeable)."""

    def __init__(self, alg: str = "RS256") -> None:
        self.alg = alg
        self.key: Any = (
            rsa.generate_private_key(65537, 2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        self.url = ""
        self.claims: dict[str, Any] = {}
        self.sign: Callable[[dict[str, Any]], str] = self.signed
        self.pending: dict[str, dict[str, str]] = {}
        self.problems: list[str] = []

    def signed(self, claims: dict[str, Any], key: Any = None) -> str:
        return jwt.encode(claims, key or self.key, algorithm=self.alg, headers={"kid": "k1"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "id_token_signing_alg_values_supported": [self.alg],
            }
        )

    async def jwks(self, request: web.Request) -> web.Response:
        to_jwk = RSAAlgorithm.to_jwk if self.alg == "RS256" else ECAlgorithm.to_jwk
        public = to_jwk(self.key.public_key(), as_dict=True) | {"kid": "k1", "use": "sig"}
        return web.json_response({"keys": [public]})

    async def authorize(self, request: web.Request) -> web.Response:
        """The person signs in here; the provider sends the browser back with a code."""
        q = request.query
        assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
        assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
        code = secrets.token_urlsafe(16)
        self.pending[code] = dict(q)
        raise web.HTTPFound(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")

    @staticmethod
    def problem(request: web.Request, form: Any, asked: dict[str, str] | None) -> str | None:
        """Client authentication, a code we issued, the same redirect URI, and PKCE."""
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if request.headers.get("Authorization") != f"Basic {expected}":
            return "client authentication"
        if asked is None or form.get("grant_type") != "authorization_code":
            return "unknown code"
        if form.get("redirect_uri") != asked["redirect_uri"]:
            return "redirect_uri"
        if challenge.rstrip(b"=").decode() != asked["code_challenge"]:
            return "PKCE"
        return None

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        asked = self.pending.pop(str(form.get("code")), None)
        problem = self.problem(request, form, asked)
        if problem is not None or asked is None:
            self.problems.append(problem or "unknown code")
            return web.json_response({"error": "invalid_grant"}, status=400)
        now = int(time.time())
        claims = {
            "iss": self.url,
            "sub": "2f1c9a",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": asked["nonce"],
            "preferred_username": "pat.smith",
            "groups": ["999-handlers", "control-room-supervisors", "canteen"],
        } | self.claims
        return web.json_response(
            {"access_token": "at", "token_type": "Bearer", "id_token": self.sign(claims)}
        )
