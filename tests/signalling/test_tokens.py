import time

import jwt
import pytest

from signalling.tokens import CALLER_AUDIENCE, CallerTokens, TokenError

SECRET = b"k" * 32


def test_minted_token_verifies_to_its_session() -> None:
    tokens = CallerTokens(SECRET, lifetime_s=60)
    token, claims = tokens.mint("abc123")
    verified = tokens.verify(token)
    assert verified.session_id == "abc123"
    assert verified.token_id == claims.token_id
    assert token.count(".") == 2 and claims.token_id not in ("", None)


def test_each_link_gets_its_own_id() -> None:
    tokens = CallerTokens(SECRET, lifetime_s=60)
    assert tokens.mint("s")[1].token_id != tokens.mint("s")[1].token_id


def test_expired_token_is_refused() -> None:
    tokens = CallerTokens(SECRET, lifetime_s=10)
    token, _ = tokens.mint("s", now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_token_signed_with_another_key_is_refused() -> None:
    token, _ = CallerTokens(b"x" * 32, lifetime_s=60).mint("s")
    with pytest.raises(TokenError, match="invalid"):
        CallerTokens(SECRET, lifetime_s=60).verify(token)


def test_tampered_payload_is_refused() -> None:
    tokens = CallerTokens(SECRET, lifetime_s=60)
    token, _ = tokens.mint("s")
    header, payload, signature = token.split(".")
    forged = jwt.encode({"sub": "other"}, SECRET, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenError):
        tokens.verify(".".join([header, forged, signature]))


def test_alg_none_is_refused() -> None:
    now = int(time.time())
    unsigned = jwt.encode(
        {
            "sub": "s",
            "jti": "j",
            "aud": CALLER_AUDIENCE,
            "iss": "scenelink",
            "iat": now,
            "exp": now + 60,
        },
        key=None,
        algorithm="none",
    )
    with pytest.raises(TokenError):
        CallerTokens(SECRET, lifetime_s=60).verify(unsigned)


def test_wrong_audience_is_refused() -> None:
    now = int(time.time())
    other = jwt.encode(
        {
            "sub": "s",
            "jti": "j",
            "aud": "scenelink:console",
            "iss": "scenelink",
            "iat": now,
            "exp": now + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(TokenError):
        CallerTokens(SECRET, lifetime_s=60).verify(other)


def test_short_secret_is_rejected() -> None:
    with pytest.raises(ValueError):
        CallerTokens(b"short", lifetime_s=60)
