"""Read recorded parts back from the containers themselves (tests, benchmarks, verification)."""

from __future__ import annotations

from pathlib import Path

import av


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
