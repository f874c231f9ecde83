import time

import jwt
import pytest

from signalling.calls.tokens import OFFICER_AUDIENCE, LinkTokens, OfficerTokens, TokenError

SECRET = b"k" * 32
KINDS = [OfficerTokens]


def test_minted_token_verifies_to_its_session() -> None:
    tokens = OfficerTokens(SECRET, lifetime_s=60)
    token, claims = tokens.mint("abc123")
    verified = tokens.verify(token)
    assert verified.session_id == "abc123"
    assert verified.token_id == claims.token_id
    assert token.count(".") == 2 and claims.token_id not in ("", None)


def test_each_link_gets_its_own_id() -> None:
    tokens = OfficerTokens(SECRET, lifetime_s=60)
    assert tokens.mint("s")[1].token_id != tokens.mint("s")[1].token_id


def test_officer_token_is_bound_to_its_share_and_lifetime() -> None:
    tokens = OfficerTokens(SECRET, lifetime_s=3600)
    now = time.time()
    token, claims = tokens.mint("sess", now, token_id="share-1", lifetime_s=90)
    verified = tokens.verify(token)
    assert (verified.session_id, verified.token_id) == ("sess", "share-1")
    assert verified.expires_at == pytest.approx(now + 90, abs=1)
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == OFFICER_AUDIENCE


def test_a_token_for_another_audience_is_refused() -> None:
    other = jwt.encode(claims("scenelink:caller"), SECRET, algorithm="HS256")
    with pytest.raises(TokenError, match="(?i)audience"):
        OfficerTokens(SECRET, 60).verify(other)


@pytest.mark.parametrize("kind", KINDS)
def test_expired_token_is_refused(kind: type[LinkTokens]) -> None:
    tokens = kind(SECRET, lifetime_s=10)
    token, _ = tokens.mint("s", now=time.time() - 3600)
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


@pytest.mark.parametrize("kind", KINDS)
def test_token_signed_with_another_key_is_refused(kind: type[LinkTokens]) -> None:
    token, _ = kind(b"x" * 32, lifetime_s=60).mint("s")
    with pytest.raises(TokenError, match="invalid"):
        kind(SECRET, lifetime_s=60).verify(token)


@pytest.mark.parametrize("kind", KINDS)
def test_tampered_payload_is_refused(kind: type[LinkTokens]) -> None:
    tokens = kind(SECRET, lifetime_s=60)
    token, _ = tokens.mint("s")
    header, payload, signature = token.split(".")
    forged = jwt.encode({"sub": "other"}, SECRET, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenError):
        tokens.verify(".".join([header, forged, signature]))


def claims(audience: str) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "s",
        "jti": "j",
        "aud": audience,
        "iss": "scenelink",
        "iat": now,
        "exp": now + 60,
    }


@pytest.mark.parametrize(("kind", "audience"), [(OfficerTokens, OFFICER_AUDIENCE)])
def test_alg_none_is_refused(kind: type[LinkTokens], audience: str) -> None:
    # PyJWT's hints leave out None, the one key "none" takes.
    unsigned = jwt.encode(claims(audience), key=None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(TokenError):
        kind(SECRET, lifetime_s=60).verify(unsigned)


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_audience_is_refused(kind: type[LinkTokens]) -> None:
    other = jwt.encode(claims("scenelink:console"), SECRET, algorithm="HS256")
    with pytest.raises(TokenError):
        kind(SECRET, lifetime_s=60).verify(other)


@pytest.mark.parametrize("kind", KINDS)
def test_short_secret_is_rejected(kind: type[LinkTokens]) -> None:
    with pytest.raises(ValueError):
        kind(b"short", lifetime_s=60)
