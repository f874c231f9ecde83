"""The files of a session as the console lists them: what the caller sent and the handlers'
snapshots, read back from the session's bundle (its events and chain), so the list is the
evidence's own and survives a restart. Blocking: read in a worker thread."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
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


def _record(event: Mapping[str, Any], thumbnails: dict[str, str]) -> SessionFile:
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


def list_files(
    events: Iterable[Mapping[str, Any]], derivatives: Iterable[Mapping[str, Any]]
) -> tuple[list[SessionFile], StillsState | None]:
    """The files the events name, in the order they arrived, each with its thumbnail among
    the chained ``derivatives``, and whether stills replace video."""
    thumbnails = {str(d["of"]): str(d["name"]) for d in derivatives if d.get("role") == "thumbnail"}
    files: list[SessionFile] = []
    stills: StillsState | None = None
    for event in events:
        if event.get("event") in ("caller_file", "snapshot"):
            files.append(_record(event, thumbnails))
        elif event.get("event") == "stills_fallback":
            stills = {"on": event["on"], "reason": event["reason"], "at": event["at"]}
    return files, stills


def session_files(folder: Path) -> tuple[list[SessionFile], StillsState | None]:
    """``list_files`` of a live session's folder (its chain and events as written so far)."""
    derivatives = [e for e in load_chain(folder / CHAIN_FILE) if e["kind"] == "derivative"]
    path = folder / EVENTS_FILE
    events = []
    for line in path.read_bytes().splitlines() if path.exists() else []:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a line a crash tore: moved aside when the recorder opens the folder
    return list_files(events, derivatives)


def kept_names(folder: Path) -> set[str]:
    """Every original and derivative the chain holds: the only names a file route serves."""
    return {
        str(e["name"])
        for e in load_chain(folder / CHAIN_FILE)
        if e["kind"] in ("original", "derivative")
    }
