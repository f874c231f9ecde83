"""Which video frames went missing where: caller->server, server->viewer, server->recording.

Each video frame a caller sends gets a send number (1, 2, ...; the clip loops, so number k
is clip frame (k - 1) mod n). Viewers match frames to numbers by their bytes as they arrive;
the recording's frames are matched to clip frames by bytes and numbered in order, the first
one placed by the part's first-frame wall clock. A frame that no consumer got, inside the
span they all cover, was lost before the server's fan-out (caller->server); one missing at
some consumers only was lost on the way to them. Frames after the last one anybody got are
not counted: nobody can tell them from frames still in flight when the load stopped.
The count per stage from the send numbers is bench.report.stage_losses; reading and numbering
the recordings is here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av

from recorder.library import video_packets

from .report import LoadReport
from .synthetic import Clip


def frame_key(data: bytes) -> bytes:
    """Identity of a video frame's bytes, blind to H.264 start-code length (3 or 4 bytes)."""
    return hashlib.blake2b(
        data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01"), digest_size=12
    ).digest()


def number_frames(indices: list[int], period: int, anchor: int) -> list[int]:
    """Send numbers (from 1) for clip positions seen in order; the first is the number nearest
    to ``anchor`` that shows that position, each next one the first after its predecessor."""
    numbers: list[int] = []
    for index in indices:
        if not numbers:
            number = index + 1 + period * max(0, round((anchor - index - 1) / period))
        else:
            previous = numbers[-1]
            number = previous + 1 + (index - previous) % period
        numbers.append(number)
    return numbers


def align_loops(numbers: list[int], seen: set[int], period: int) -> list[int]:
    """Shift recorded numbers by whole clip loops to agree best with what viewers saw.

    The first recorded frame is placed by its arrival time; under heavy load a frame arrives
    seconds after it was sent, and a delay over half the clip's loop places it a loop out.
    """
    if not seen or not numbers:
        return numbers
    got = set(numbers)

    def overlap(shift: int) -> int:
        return len({n + shift * period for n in got} & seen)

    lowest = min(numbers)
    shifts = [shift for shift in range(-3, 4) if lowest + shift * period >= 1]
    best = max(shifts, key=lambda shift: (overlap(shift), -abs(shift)))
    return [n + best * period for n in numbers]


def split_at_long_gaps(numbers: list[int], period: int) -> list[list[int]]:
    """Runs of numbers with no gap over half a loop: across a longer gap (a stalled sender)
    the bytes cannot say how many loops went by, so each run is placed on its own."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n - runs[-1][-1] <= period // 2:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def _first_frame_wall_clock(folder: Path, part: str) -> float:
    for line in (folder / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "recording_part_started" and event.get("part") == part:
            return float(event["first_frame_wall_clock"])
    raise ValueError(f"{folder}: no recording_part_started event for {part}")


def _recorder_missed(folder: Path) -> int | None:
    """Video frames the relay had for the recorder that it did not write (dropped when it
    fell behind, or skipped waiting for a keyframe), from its closing recording_totals."""
    missed = None
    events = folder / "events.jsonl"  # aiortc's stock recorder (bench.stock) writes none
    for line in events.read_text().splitlines() if events.exists() else []:
        event = json.loads(line)
        if event.get("event") == "recording_totals":
            video = event["video"]
            missed = (missed or 0) + int(video["dropped"]) + int(video["skipped"])
    return missed


def recorded_frames(evidence_dir: Path, report: LoadReport, clip: Clip) -> dict[str, int]:
    """Count the frames in the recordings of the report's sessions, demuxed (not decoded), and
    number the video ones (``CallerStats.recorded``); ``lost`` is gaps between them.

    Each part is numbered from its own first-frame wall clock (a new part starts when the caller
    reconnects), and each run between long gaps is placed by what the viewers saw.
    """
    keys = {frame_key(p.data): i for i, p in enumerate(clip.video)}
    total = audio = lost = unmatched = 0
    for stats in report.callers:
        folder = evidence_dir / stats.session_id
        seen = set().union(*(v.indices for v in stats.viewers))
        stats.recorded = []
        for part in sorted(folder.glob("media-*.mkv")):
            packets = video_packets(part)
            total += len(packets)
            with av.open(str(part)) as container:
                if container.streams.audio:
                    audio += sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
            indices: list[int] = []
            for data in packets:
                index = keys.get(frame_key(data))
                if index is None:
                    unmatched += 1
                else:
                    indices.append(index)
            if not indices or stats.first_sent_at is None:
                continue
            first = _first_frame_wall_clock(folder, part.name)
            anchor = 1 + round((first - stats.first_sent_at) * clip.fps)
            numbers = number_frames(indices, len(keys), anchor)
            for run in split_at_long_gaps(numbers, len(keys)):
                stats.recorded += align_loops(run, seen, len(keys))
        stats.recorder_missed = _recorder_missed(folder)
        if stats.recorded:
            got = set(stats.recorded)
            lost += max(got) - min(got) + 1 - len(got)
    return {"video": total, "audio": audio, "lost": lost, "unmatched": unmatched}
