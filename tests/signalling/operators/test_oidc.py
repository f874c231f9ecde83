"""Single sign-on against a small OpenID Connect provider of the tests' own (discovery, JWKS,
authorize, token endpoint with PKCE), and the ID tokens an attacker would try."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT
from tests.client import Client, client_of
from tests.providers import CLIENT_ID, CLIENT_SECRET, Provider

ROLE_MAP = {"999-handlers": ["call_handler"], "control-room-supervisors": ["supervisor"]}
Serve = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture(params=["RS256"])
async def provider(request: pytest.FixtureRequest, aiohttp_server: Serve) -> Provider:
    provider = Provider(request.param)
    server = await aiohttp_server(provider.app())
    provider.url = str(server.make_url("")).rstrip("/")
    return provider


async def console(aiohttp_client: AiohttpClient, tmp_path: Path, **settings: Any) -> Client:
    app = make_app(load_settings(data_dir=tmp_path, **settings))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    return client


@pytest.fixture
async def client(provider: Provider, aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    return await console(
        aiohttp_client,
        tmp_path,
        operators=[{"username": "alice", "password": "pw-alice", "roles": ["admin"]}],
        oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_provider_name="Force Azure AD",
        oidc_role_map=ROLE_MAP,
    )


async def provider_redirect(client: Client) -> str:
    """Console -> provider, as the browser goes: where the provider sends it back."""
    start = await client.get("/api/oidc/login", allow_redirects=False)
    assert start.status == 302, await start.text()
    flow_cookie = start.cookies["scenelink_oidc"]
    assert flow_cookie["samesite"] == "Lax" and flow_cookie["httponly"]
    at_provider = await client.session.get(start.headers["Location"], allow_redirects=False)
    back: str = at_provider.headers["Location"]
    assert back.startswith(str(client.make_url("/api/oidc/callback")))
    return back


async def sign_in(client: Client, tamper_state: bool = False, accept: str = "*/*") -> Any:
    back = await provider_redirect(client)
    if tamper_state:
        back = back.replace("state=", "state=x")
    return await client.session.get(back, allow_redirects=False, headers={"Accept": accept})


def audited(client: Client, action: str) -> list[dict[str, Any]]:
    return [r for r in client.app[AUDIT].read() if r["action"] == action]


@pytest.mark.parametrize("provider", ["RS256", "ES256"], indirect=True)
async def test_sign_in_through_the_provider(client: Client, provider: Provider) -> None:
    assert await (await client.get("/api/oidc/config")).json() == {
        "enabled": True,
        "provider": "Force Azure AD",
    }
    done = await sign_in(client)
    assert done.status == 302 and done.headers["Location"] == "/console/"
    assert provider.problems == []
    me = await client.get("/api/me")
    who = await me.json()
    assert (who["username"], who["roles"]) == ("pat.smith", ["call_handler", "supervisor"])
    assert (await client.get("/api/audit")).status == 200  # supervisor, from the provider
    [record] = audited(client, "sign_in")
    assert record["actor"] == "pat.smith" and record["detail"]["via"] == "oidc"


async def test_a_replayed_callback_is_refused(client: Client, provider: Provider) -> None:
    back = await provider_redirect(client)
    assert (await client.session.get(back, allow_redirects=False)).status == 302
    client.session.cookie_jar.clear()
    await provider_redirect(client)  # a fresh flow cookie, an old code and state
    assert (await client.session.get(back, allow_redirects=False)).status == 400


def forged(provider: Provider, name: str) -> Callable[[dict[str, Any]], str]:
    now = int(time.time())
    other_key = rsa.generate_private_key(65537, 2048)
    attacks: dict[str, Callable[[dict[str, Any]], str]] = {
        "forged signature": lambda c: provider.signed(c, other_key),
        "wrong audience": lambda c: provider.signed(c | {"aud": "another-app"}),
        "wrong issuer": lambda c: provider.signed(c | {"iss": "https://evil.example"}),
        "expired": lambda c: provider.signed(c | {"iat": now - 900, "exp": now - 300}),
        "wrong nonce": lambda c: provider.signed(c | {"nonce": "replayed"}),
        "alg none": lambda c: jwt.encode(
            c,
            None,  # type: ignore[arg-type]  # "none" takes no key; PyJWT's hints leave None out
            algorithm="none",
            headers={"kid": "k1"},
        ),
        "HS256 with the client secret": lambda c: jwt.encode(
            c, CLIENT_SECRET, algorithm="HS256", headers={"kid": "k1"}
        ),
        "unknown key id": lambda c: jwt.encode(
            c, other_key, algorithm="RS256", headers={"kid": "k2"}
        ),
    }
    return attacks[name]


@pytest.mark.parametrize(
    ("attack", "reason"),
    [
        ("forged signature", "Signature verification failed"),
        ("wrong audience", "Audience doesn't match"),
        ("wrong issuer", "Invalid issuer"),
        ("expired", "Signature has expired"),
        ("wrong nonce", "another sign-in (nonce)"),
        ("alg none", "algorithm 'none' not accepted"),
        ("HS256 with the client secret", "algorithm 'HS256' not accepted"),
        ("unknown key id", "a key the provider does not publish"),
    ],
)
async def test_untrustworthy_id_tokens_are_refused(
    client: Client, provider: Provider, attack: str, reason: str
) -> None:
    provider.sign = forged(provider, attack)
    refused = await sign_in(client)
    assert refused.status == 401, attack
    assert (await refused.json())["error"] == "single sign-on refused"
    assert "scenelink_session" not in refused.cookies
    assert (await client.get("/api/me")).status == 401
    [record] = audited(client, "sign_in_failed")
    assert record["detail"]["via"] == "oidc" and record["actor"] == "anonymous"
    assert reason in record["detail"]["reason"]


async def test_no_mapped_role_is_refused_and_audited(client: Client, provider: Provider) -> None:
    provider.claims = {"groups": ["canteen"], "preferred_username": "sam.jones"}
    refused = await sign_in(client)
    assert refused.status == 403
    assert (await client.get("/api/me")).status == 401
    [record] = audited(client, "sign_in_refused")
    assert record["actor"] == "sam.jones" and "no SceneLink role" in record["detail"]["reason"]


async def test_a_browser_is_told_in_plain_words_with_the_same_status(
    client: Client, provider: Provider
) -> None:
    provider.claims = {"groups": ["canteen"], "preferred_username": "sam.jones"}
    refused = await sign_in(client, accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert refused.status == 403 and refused.content_type == "text/html"
    page = await refused.text()
    assert 'data-reason="sign_in_refused"' in page and "not set up to use SceneLink" in page
    assert "canteen" not in page  # the reason stays in the audit trail
    assert "default-src" in refused.headers["Content-Security-Policy"]
    assert (await client.get("/api/me")).status == 401
    assert len(audited(client, "sign_in_refused")) == 1


async def test_a_local_account_name_is_not_taken_over(client: Client, provider: Provider) -> None:
    for name in ("alice", "Alice"):
        provider.claims = {"preferred_username": name}
        assert (await sign_in(client)).status == 403
        assert (await client.get("/api/me")).status == 401


async def test_names_that_could_pass_for_something_else_are_refused(
    client: Client, provider: Provider
) -> None:
    for name in ("officer-link:x", "caller", " spaced", "x" * 65):
        provider.claims = {"preferred_username": name}
        assert (await sign_in(client)).status == 401, name
    assert (await client.get("/api/me")).status == 401


async def test_state_and_flow_cookie_are_checked(client: Client, provider: Provider) -> None:
    assert (await sign_in(client, tamper_state=True)).status == 400
    client.session.cookie_jar.clear()
    code_only = await client.get("/api/oidc/callback?code=x&state=y", allow_redirects=False)
    assert code_only.status == 400
    assert (await client.get("/api/me")).status == 401


async def test_roles_come_from_a_nested_claim(
    provider: Provider, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    provider.claims = {"realm_access": {"roles": ["999-handlers"]}, "groups": []}
    client = await console(
        aiohttp_client,
        tmp_path,
        oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_role_claim="realm_access.roles",
        oidc_role_map=ROLE_MAP,
    )
    assert (await sign_in(client)).status == 302
    assert (await (await client.get("/api/me")).json())["roles"] == ["call_handler"]


async def test_off_unless_configured(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await console(aiohttp_client, tmp_path)
    assert await (await client.get("/api/oidc/config")).json() == {
        "enabled": False,
        "provider": None,
    }
    assert (await client.get("/api/oidc/login", allow_redirects=False)).status == 404
    assert (await client.get("/api/oidc/callback?code=x&state=y")).status == 404


async def test_the_authorization_request_carries_pkce_and_nonce(
    client: Client, provider: Provider
) -> None:
    start = await client.get("/api/oidc/login", allow_redirects=False)
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["Location"]).query).items()}
    assert start.headers["Location"].startswith(f"{provider.url}/authorize?")
    assert query["redirect_uri"] == str(client.make_url("/api/oidc/callback"))
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert (
        len(query["state"]) >= 32 and len(query["nonce"]) >= 32 and query["state"] != query["nonce"]
    )
    assert query["scope"] == "openid profile"
