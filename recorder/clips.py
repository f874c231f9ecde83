"""Clips: a time range of a session, remuxed (never re-encoded) from the master parts.

Without decoding, a clip can only begin on a keyframe, so each part's clip starts at the last
video keyframe at or before the range's start (the log says where it was cut). One clip file
is written per master part the range touches, in the master's own container (Matroska) with
the master's packets byte for byte and their timestamps unchanged. Blocking: run in a thread.
"""

from __future__ import annotations

import threading
from pathlib import Path

import av

from .derivatives import (
    DerivativeLog,
    DerivativeRequest,
    MasterPart,
    OutputFile,
    Progress,
    check_cancel,
    finish_log,
    output_ref,
)

CONTENT_TYPE = "video/x-matroska"


def clip_name(part: MasterPart) -> str:
    return f"clip-{part.name.removeprefix('media-')}"


def keyframe_before(part: MasterPart, local_s: float) -> float:
    """The time (in the part) of the last video keyframe at or before ``local_s``; the first
    keyframe if there is none before it."""
    first: float | None = None
    best: float | None = None
    with part.open() as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if not packet.is_keyframe or packet.pts is None or packet.time_base is None:
                continue
            t = float(packet.pts * packet.time_base)
            first = t if first is None else first
            if t <= local_s:
                best = t
            else:
                break
    if best is not None:
        return best
    if first is None:
        raise ValueError(f"{part.name}: no video keyframe to cut at")
    return first


def remux_part(part: MasterPart, start_s: float, end_s: float, out: Path) -> float:
    """Copy the part's packets timed in [keyframe at or before start_s, end_s) into ``out``;
    returns where the cut begins (seconds in the part)."""
    cut = keyframe_before(part, max(0.0, start_s))
    with part.open() as source, OutputFile(out) as target:
        with av.open(target.file, "w", format="matroska") as sink:
            streams = {s.index: sink.add_stream_from_template(s) for s in source.streams}
            for packet in source.demux(*source.streams):
                if packet.pts is None or packet.time_base is None or not packet.size:
                    continue
                t = float(packet.pts * packet.time_base)
                if t < cut or t >= end_s:
                    continue
                packet.stream = streams[packet.stream.index]
                sink.mux(packet)
    return cut


def make_clip(
    request: DerivativeRequest,
    parts: list[MasterPart],
    start_s: float,
    end_s: float,
    folder: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> DerivativeLog:
    """Write the clip's files and its log into ``folder`` (new, empty); returns the log."""
    if not parts:
        raise ValueError("no recorded media in that range")
    outputs = []
    cuts = []
    for i, part in enumerate(parts):
        check_cancel(cancel)
        out = folder / clip_name(part)
        local_start, local_end = start_s - part.offset_s, end_s - part.offset_s
        cut = remux_part(part, local_start, local_end, out)
        outputs.append(output_ref(out, CONTENT_TYPE))
        cuts.append(
            f"{out.name} from {part.name} at {cut:.3f} s in the part "
            f"({part.offset_s + cut:.3f} s in the session)"
        )
        if progress is not None:
            progress((i + 1) / len(parts))
    method = (
        "remuxed, not re-encoded: the master's packets byte for byte; cut at "
        "keyframes (a clip starts at the last keyframe at or before the range's start): "
        + "; ".join(cuts)
    )
    return finish_log(folder, request, "clip", start_s, end_s, parts, outputs, None, method)
