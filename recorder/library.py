"""Find recordings in the evidence folder and measure them from the containers themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

MEDIA_GLOB = "media-*.mkv"


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    session_id: str
    folder: Path
    parts: list[Path]
    duration_s: float
    size_bytes: int
    fix_count: int


def media_duration(path: Path) -> float:
    """Seconds of media in one part, read with PyAV (demux only, nothing is decoded).

    A part whose writer died has no duration in its header, so the packets are scanned.
    """
    with av.open(str(path)) as container:
        start: float | None = None
        end = 0.0
        for packet in container.demux():
            if packet.pts is None or packet.time_base is None:
                continue
            t0 = float(packet.pts * packet.time_base)
            t1 = t0 + float((packet.duration or 0) * packet.time_base)
            start = t0 if start is None else min(start, t0)
            end = max(end, t1)
        return 0.0 if start is None else end - start


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def recording_info(folder: Path) -> RecordingInfo:
    parts = sorted(folder.glob(MEDIA_GLOB))
    duration = 0.0
    for part in parts:
        try:
            duration += media_duration(part)
        except av.FFmpegError:
            pass  # an empty or unreadable part adds nothing
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return RecordingInfo(
        session_id=folder.name,
        folder=folder,
        parts=parts,
        duration_s=duration,
        size_bytes=size,
        fix_count=_count_lines(folder / "location.jsonl"),
    )


def list_recordings(evidence_dir: Path) -> list[RecordingInfo]:
    """One entry per session folder (blocking: call it from a thread in async code)."""
    if not evidence_dir.is_dir():
        return []
    return [recording_info(f) for f in sorted(evidence_dir.iterdir()) if f.is_dir()]


def avcc_to_annexb(data: bytes) -> bytes:
    """Matroska stores H.264 length-prefixed; rebuild the 4-byte start-code form."""
    out = bytearray()
    pos = 0
    while pos + 4 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        out += b"\x00\x00\x00\x01" + data[pos + 4 : pos + 4 + size]
        pos += 4 + size
    return bytes(out)


def video_packets(path: Path) -> list[bytes]:
    """A part's video packets as the relay carried them (Annex-B for H.264), for verification."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        h264 = stream.codec_context.name == "h264"
        return [
            avcc_to_annexb(bytes(p)) if h264 else bytes(p)
            for p in container.demux(stream)
            if p.size
        ]
