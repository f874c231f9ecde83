"""Periodic fixity check: re-hash every stored object a signed manifest lists.

For each session in the store's index, each node's stored manifest (``contributions``) is
fetched and its signature checked (this node's key and those published in the store), then
every segment and file it lists is downloaded and re-hashed. Mismatches are returned (and
logged); ``FixityJob`` runs the check every ``interval_s`` in a thread and appends each run's
result to a JSON-lines log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from .chain import canonical
from .contributions import node_prefixes
from .defaults import FIXITY_INTERVAL_S
from .durable import append_line, make_folder
from .manifest import MANIFEST_JWS, verify_jws
from .nodes import trusted_jwks
from .periodic import Periodic
from .store import INDEX_PREFIX, EvidenceStore

logger = logging.getLogger(__name__)


def check_store(store: EvidenceStore, jwks: dict[str, Any]) -> dict[str, Any]:
    """Blocking. {"sessions", "objects", "mismatches": [{"key", "problem"}]}; every node's
    contribution to each session, with ``jwks`` and the keys published in the store."""
    mismatches: list[dict[str, str]] = []
    objects = sessions = 0
    trusted = trusted_jwks(jwks, store)
    for index in store.list(INDEX_PREFIX):
        sessions += 1
        try:
            session_prefix = str(json.loads(store.get(index))["prefix"])
            prefixes = [session_prefix, *node_prefixes(store, session_prefix)]
        except Exception as exc:
            mismatches.append({"key": index, "problem": f"index unusable: {exc}"})
            continue
        for prefix in prefixes:
            objects += _check_bundle(store, prefix, trusted, mismatches)
    for m in mismatches:
        logger.error("fixity: %s: %s", m["key"], m["problem"])
    return {
        "checked_at": time.time(),
        "sessions": sessions,
        "objects": objects,
        "mismatches": mismatches,
    }


def _check_bundle(
    store: EvidenceStore, prefix: str, jwks: dict[str, Any], mismatches: list[dict[str, str]]
) -> int:
    """One node's contribution: its manifest's signature, then every object it lists;
    returns how many objects were checked."""
    try:
        manifest = verify_jws(store.get(f"{prefix}/{MANIFEST_JWS}").decode(), jwks)
    except Exception as exc:
        mismatches.append(
            {"key": f"{prefix}/{MANIFEST_JWS}", "problem": f"manifest unusable: {exc}"}
        )
        return 0
    kept = manifest.get("originals", []) + manifest.get("derivatives", [])
    expected = {s["name"]: s["sha256"] for s in manifest.get("segments", []) + kept}
    for name, info in manifest.get("files", {}).items():
        expected[name] = info["sha256"]
    sizes = {name: int(info["bytes"]) for name, info in manifest.get("files", {}).items()}
    for name, digest in expected.items():
        key = f"{prefix}/{name}"
        try:
            data = store.get(key)
        except Exception as exc:
            mismatches.append({"key": key, "problem": f"missing: {exc}"})
            continue
        if name in sizes:
            data = data[: sizes[name]] if len(data) >= sizes[name] else data
        if hashlib.sha256(data).hexdigest() != digest:
            mismatches.append({"key": key, "problem": "SHA-256 mismatch"})
    return len(expected)


class FixityJob(Periodic):
    def __init__(
        self,
        store: EvidenceStore,
        jwks: dict[str, Any],
        log: Path,
        interval_s: float = FIXITY_INTERVAL_S,
    ) -> None:
        super().__init__("fixity check", interval_s, self.run_once)
        self.store = store
        self.jwks = jwks
        self.log = log
        self.last: dict[str, Any] | None = None

    def run_once(self) -> dict[str, Any]:
        """Blocking: check the store, log the result, keep it for the console."""
        result = check_store(self.store, self.jwks)
        make_folder(self.log.parent)
        append_line(self.log, canonical(result) + b"\n")
        self.last = result
        return result
