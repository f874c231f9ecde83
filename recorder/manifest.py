"""The signed manifest of an evidence bundle and the server's signing key.

The manifest is canonical JSON, signed as a JWS (EdDSA, Ed25519) with pyjwt. ``manifest.jws``
is the authority; ``manifest.json`` is the same payload for people to read. The key id is the
RFC 7638 SHA-256 thumbprint of the public JWK, which is published as a JWKS (``jwks()``) and
copied into each bundle as ``jwks.json`` for convenience (a verifier should compare its ``kid``
with the one the force publishes).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .chain import canonical
from .layout import SIGNING_KEY_FILE

MANIFEST_JWS = "manifest.jws"
MANIFEST_JSON = "manifest.json"
JWKS_FILE = "jwks.json"
ALGORITHM = "EdDSA"
KEY_FILE = SIGNING_KEY_FILE  # in the data folder (recorder.layout)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(public: Ed25519PublicKey) -> dict[str, str]:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 key id: base64url SHA-256 of the required members in canonical order."""
    required = {k: jwk[k] for k in ("crv", "kty", "x")}
    text = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(text).digest())


class Signer:
    """Signs manifests with one Ed25519 key; ``kid`` identifies it."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self.public_key = key.public_key()
        self.jwk = public_jwk(self.public_key)
        self.kid = thumbprint(self.jwk)

    @classmethod
    def load_or_create(cls, path: Path) -> Signer:
        """Read a PEM key, or generate one there (mode 0600) the first time."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path}: not an Ed25519 private key")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return cls(key)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public key set for ``/.well-known/jwks.json``."""
        return {"keys": [{**self.jwk, "kid": self.kid, "alg": ALGORITHM, "use": "sig"}]}

    def sign(self, manifest: dict[str, Any]) -> str:
        return jwt.PyJWS().encode(
            canonical(manifest), self.key, algorithm=ALGORITHM, headers={"kid": self.kid}
        )


def key_from_jwks(jwks: dict[str, Any], kid: str) -> Ed25519PublicKey:
    for jwk in jwks.get("keys", []):
        if jwk.get("kid") == kid or thumbprint(jwk) == kid:
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                raise ValueError(f"key {kid} is not Ed25519")
            raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
            return Ed25519PublicKey.from_public_bytes(raw)
    raise KeyError(f"no key {kid} in the key set")


def verify_jws(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The manifest inside ``token`` if its signature is good (raises otherwise)."""
    header = jwt.get_unverified_header(token)
    kid = str(header.get("kid", ""))
    key = key_from_jwks(jwks, kid)
    payload = jwt.PyJWS().decode(token, key, algorithms=[ALGORITHM])
    manifest: dict[str, Any] = json.loads(payload)
    if manifest.get("key_id") != kid:
        raise ValueError("manifest key_id differs from the signature's kid")
    return manifest


_TIME_ERROR = 5


def clock_source() -> dict[str, Any]:
    """What the wall-clock times in the bundle come from, and whether NTP had it in sync."""
    synced: bool | None = None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
        if state >= 0:
            synced = state != _TIME_ERROR
    except (OSError, AttributeError):
        pass
    return {"clock": "system CLOCK_REALTIME (UTC)", "ntp_synchronised": synced}
