"""What clips and redacted copies share: the master parts they are made from, their place on
the session's timeline, and the log that travels with every derivative.

A derivative is never the master: it is a new file, written once (``durable``), whose log
names its own SHA-256 and the SHA-256 of every master part it was made from, so a recipient
can tie it back to the signed bundle. The master's bytes are checked against the manifest's
hash before anything is made from them. Blocking: run in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from .catalogue import Segment
from .durable import create_exclusive, write_new
from .timeline import part_offsets

FORMAT = "scenelink-derivative/1"
LOG_FILE = "derivative-log.json"
Progress = Callable[[float], None]  # fraction done, 0..1
DerivativeKind = Literal["clip", "redaction"]


class Cancelled(Exception):
    """The job was cancelled; what it had written is removed."""


class MasterChanged(Exception):
    """A master part's bytes do not match the manifest's hash: nothing is made from it."""


@dataclass(frozen=True, slots=True)
class MasterPart:
    """One recorded part, its hash as the signed manifest gives it, and where it starts on
    the session's timeline (``timeline.part_offsets``)."""

    name: str
    sha256: str
    offset_s: float
    duration_s: float
    data: bytes

    def open(self) -> av.container.InputContainer:
        return av.open(io.BytesIO(self.data), "r")

    @property
    def end_s(self) -> float:
        return self.offset_s + self.duration_s


def media_end_s(segments: Sequence[Segment]) -> float:
    """Where the session's last media ends on its timeline."""
    offsets = part_offsets(segments)
    return max((o + s.duration_s for o, s in zip(offsets, segments, strict=True)), default=0.0)


def master_parts(
    segments: Sequence[Segment],
    start_s: float,
    end_s: float,
    fetch: Callable[[str], bytes],
) -> list[MasterPart]:
    """The parts that overlap ``[start_s, end_s]``, fetched and checked against their hash."""
    parts = []
    for seg, offset in zip(segments, part_offsets(segments), strict=True):
        if offset > end_s or offset + seg.duration_s < start_s:
            continue
        data = fetch(seg.name)
        if hashlib.sha256(data).hexdigest() != seg.sha256:
            raise MasterChanged(f"{seg.name}: SHA-256 differs from the manifest")
        parts.append(MasterPart(seg.name, seg.sha256, offset, seg.duration_s, data))
    return parts


class MasterRef(TypedDict):
    name: str
    sha256: str


class OutputRef(TypedDict):
    name: str
    sha256: str
    bytes: int
    content_type: str


class BoxJson(TypedDict):
    t: float
    x: float
    y: float
    w: float
    h: float


class TrackJson(TypedDict):
    label: str
    keyframes: list[BoxJson]


class MuteJson(TypedDict):
    start_s: float
    end_s: float


class HiddenJson(TypedDict):
    """What a redaction hid: regions blurred over time and audio ranges silenced."""

    regions: list[TrackJson]
    audio_muted: list[MuteJson]


class DerivativeLog(TypedDict):
    """The log a derivative carries: who made it, when, why, from what, and what it hides."""

    format: str
    derivative_id: str
    kind: DerivativeKind
    session_id: str
    made_by: str
    made_at: str
    reason: str
    start_s: float
    end_s: float
    masters: list[MasterRef]
    outputs: list[OutputRef]
    hidden: HiddenJson | None  # None for a clip
    method: str  # how it was made (remuxed and where it was cut, or the encoder)


@dataclass(frozen=True, slots=True)
class DerivativeRequest:
    derivative_id: str
    session_id: str
    made_by: str
    made_at: str
    reason: str


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def output_ref(path: Path, content_type: str) -> OutputRef:
    return {
        "name": path.name,
        "sha256": sha256_path(path),
        "bytes": path.stat().st_size,
        "content_type": content_type,
    }


class OutputFile:
    """A derivative's media file, created exclusively and fsynced at close; removed again if
    the work fails or is cancelled (an unfinished derivative is not kept)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = create_exclusive(path)

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.file.flush()
                os.fsync(self.file.fileno())
        finally:
            self.file.close()
            if kind is not None:
                self.path.unlink(missing_ok=True)


def write_log(folder: Path, log: DerivativeLog) -> Path:
    path = folder / LOG_FILE
    write_new(path, json.dumps(log, indent=1).encode())
    return path


def finish_log(
    folder: Path,
    request: DerivativeRequest,
    kind: DerivativeKind,
    start_s: float,
    end_s: float,
    parts: Sequence[MasterPart],
    outputs: list[OutputRef],
    hidden: HiddenJson | None,
    method: str,
) -> DerivativeLog:
    """The derivative's log (the request's who, when and why, the master parts it was made
    from), written into ``folder``; returns it."""
    log: DerivativeLog = {
        "format": FORMAT,
        "derivative_id": request.derivative_id,
        "kind": kind,
        "session_id": request.session_id,
        "made_by": request.made_by,
        "made_at": request.made_at,
        "reason": request.reason,
        "start_s": start_s,
        "end_s": end_s,
        "masters": [{"name": p.name, "sha256": p.sha256} for p in parts],
        "outputs": outputs,
        "hidden": hidden,
        "method": method,
    }
    write_log(folder, log)
    return log


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled


def check_log(folder: Path, master_hashes: dict[str, str]) -> DerivativeLog:
    """A derivative's log against its files and its session's manifest (``name -> sha256``).
    Raises ValueError naming the first thing that does not match."""
    log: DerivativeLog = json.loads((folder / LOG_FILE).read_bytes())
    if log.get("format") != FORMAT:
        raise ValueError(f"{LOG_FILE}: unknown format {log.get('format')!r}")
    if not log["reason"].strip():
        raise ValueError(f"{LOG_FILE}: no reason given")
    for master in log["masters"]:
        if master_hashes.get(master["name"]) != master["sha256"]:
            raise ValueError(f"master {master['name']}: not in the session's signed manifest")
    for output in log["outputs"]:
        path = folder / output["name"]
        if not path.is_file():
            raise ValueError(f"{output['name']}: missing")
        if sha256_path(path) != output["sha256"]:
            raise ValueError(f"{output['name']}: SHA-256 does not match {LOG_FILE}")
    return log
