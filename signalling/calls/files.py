"""The files of a session as the console lists them: what the caller sent and the handlers'
snapshots, read back from the session's bundle (its events and chain), so the list is the
evidence's own and survives a restart. Blocking: read in a worker thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.bundle import EVENTS_FILE
from recorder.chain import CHAIN_FILE, load_chain

FileKind = Literal["photo", "video", "still", "snapshot"]


class SessionFile(TypedDict):
    """One file in the bundle, with the derivative to show for it (``thumbnail``: None when
    none could be made, e.g. a HEIC photo: the console offers the original)."""

    name: str
    sha256: str
    size: int
    content_type: str
    kind: FileKind
    origin: str  # gallery, camera, requested, low_bandwidth; "handler" for a snapshot
    at: str
    by: str | None  # the call handler who took a snapshot
    thumbnail: str | None


def _record(event: dict[str, Any], thumbnails: dict[str, str]) -> SessionFile:
    snapshot = event["event"] == "snapshot"
    return {
        "name": event["name"],
        "sha256": event["sha256"],
        "size": int(event.get("size", 0)),
        "content_type": "image/jpeg" if snapshot else event["content_type"],
        "kind": "snapshot" if snapshot else event["kind"],
        "origin": "handler" if snapshot else event["origin"],
        "at": event["at"],
        "by": event.get("by"),
        "thumbnail": event["name"] if snapshot else thumbnails.get(event["name"]),
    }


class StillsState(TypedDict):
    """The caller's page is sending stills instead of video (the last ``stills_fallback``)."""

    on: bool
    reason: str
    at: str


def session_files(folder: Path) -> tuple[list[SessionFile], StillsState | None]:
    """The session's files in the order they arrived, and whether stills replace video."""
    thumbnails = {
        str(e["of"]): str(e["name"])
        for e in load_chain(folder / CHAIN_FILE)
        if e["kind"] == "derivative" and e.get("role") == "thumbnail"
    }
    path = folder / EVENTS_FILE
    files: list[SessionFile] = []
    stills: StillsState | None = None
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") in ("caller_file", "snapshot"):
            files.append(_record(event, thumbnails))
        elif event.get("event") == "stills_fallback":
            stills = {"on": event["on"], "reason": event["reason"], "at": event["at"]}
    return files, stills


def kept_names(folder: Path) -> set[str]:
    """Every original and derivative the chain holds: the only names a file route serves."""
    return {
        str(e["name"])
        for e in load_chain(folder / CHAIN_FILE)
        if e["kind"] in ("original", "derivative")
    }
