"""This node in a cluster: its id, and every node's signing key, shared through the store.

Each node signs its own contribution to a session's bundle with its own key (``manifest``).
At start-up it publishes its public key to the evidence store as ``keys/<kid>.json`` with
``create``: written once, never replaced (with Object Lock a published key cannot be changed
or removed while locked, ``KEY_RETENTION_DAYS``). Catalogue, fixity and ``scenelink verify``
trust the keys they are given (this node's own, or ``--jwks``) plus every key published
there. Trusting a published key is trusting whoever may write to the store: the lock keeps a
key from being swapped, not a new one from being added. So the served key set
(``/.well-known/jwks.json``) lists them all, for a force to publish and compare.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from pathlib import Path
from typing import Any

from .chain import canonical
from .defaults import KEY_RETENTION_DAYS
from .durable import write_new
from .manifest import Signer, thumbprint
from .store import AlreadyStored, EvidenceStore, StoreError, retain_until

logger = logging.getLogger(__name__)

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
KEYS_PREFIX = "keys/"
JWKS = dict[str, Any]


def check_node_id(text: str) -> str:
    """A node id goes into part names and store keys: letters, digits, ``_`` and ``-``."""
    if not NODE_ID.match(text):
        raise ValueError(f"node id {text[:50]!r}: 1-40 letters, digits, '_' or '-'")
    return text


def load_or_create_node_id(path: Path) -> str:
    """The id kept in ``path``, or a new random one written there the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_new(path, (secrets.token_hex(4) + "\n").encode())
        except FileExistsError:
            pass  # another process of this node made it first: use theirs
    return check_node_id(path.read_text().strip())


def key_object(kid: str) -> str:
    return f"{KEYS_PREFIX}{kid}.json"


def publish_key(store: EvidenceStore, signer: Signer, node_id: str) -> None:
    """Put this node's public key in the store once (blocking); already there is fine."""
    record = {**signer.jwks()["keys"][0], "node_id": node_id}
    try:
        store.create(key_object(signer.kid), canonical(record), retain_until(KEY_RETENTION_DAYS))
    except AlreadyStored:
        pass


def _read_key(store: EvidenceStore, name: str) -> dict[str, Any] | None:
    """The key in ``keys/<kid>.json`` if the object holds the key its name says, else None
    (logged)."""
    try:
        jwk: dict[str, Any] = json.loads(store.get(name))
        kid = thumbprint(jwk)
    except (StoreError, ValueError, KeyError, TypeError) as exc:
        logger.warning("keys: %s unusable: %s", name, exc)
        return None
    if name != key_object(kid) or jwk.get("kid") != kid:
        logger.warning("keys: %s does not hold the key its name says", name)
        return None
    return jwk


class KeySet:
    """Keys given (this node's, or ``--jwks``) and every key published in the store. Each
    key object is read once: its name is its key's thumbprint, so what it holds never
    changes. Blocking; thread-safe."""

    def __init__(self, local: JWKS, store: EvidenceStore | None) -> None:
        self.local = local
        self.store = store
        self._read: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    def published(self) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        names = self.store.list(KEYS_PREFIX)
        with self._lock:
            new = [n for n in names if n not in self._read]
        found = {name: _read_key(self.store, name) for name in new}
        with self._lock:
            self._read.update(found)
            return [k for k in self._read.values() if k is not None]

    def jwks(self) -> JWKS:
        """``local``'s keys, then the published ones it lacks."""
        keys = list(self.local.get("keys", []))
        known = {k.get("kid") for k in keys}
        return {"keys": keys + [k for k in self.published() if k["kid"] not in known]}


def published_keys(store: EvidenceStore) -> list[dict[str, Any]]:
    """Every key published in the store (blocking)."""
    return KeySet({}, store).published()


def trusted_jwks(local: JWKS, store: EvidenceStore | None) -> JWKS:
    """``local``'s keys, then every key published in the store (blocking, read afresh)."""
    return KeySet(local, store).jwks()
