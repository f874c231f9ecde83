"""A recording "server" for the SIGKILL tests: streams a clip into a SessionRecorder forever.

argv: evidence folder, clip cache dir, key path, sent log. Each relayed video frame's arrival
time is appended to the sent log so that the test can measure what the kill lost.
``kill_mid_part`` runs it and kills it part-way through a part.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path

from bench.synthetic import build_clip
from recorder import SessionRecorder
from recorder.manifest import Signer
from streamserver.relay import TrackRelay
from tests.recorder.feed import PacedTrack, looped_frames, session_created


async def main(folder: Path, clips: Path, key: Path, sent: Path) -> None:
    clip = build_clip("H264", clips)
    rec = SessionRecorder(folder, signer=Signer.load_or_create(key), segment_seconds=2.0)
    rec.append_event(session_created("INC-K", "tk"))
    vrelay, arelay = TrackRelay("video", 4000), TrackRelay("audio", 4000)
    vsub = vrelay.subscribe(4000)
    rec.attach(vsub, arelay.subscribe(4000))
    video, audio = looped_frames(clip, time.time(), 60.0)
    vrelay.set_source(PacedTrack("video", video))
    arelay.set_source(PacedTrack("audio", audio))
    with sent.open("a") as log:
        last = 0
        while True:
            await asyncio.sleep(0.02)
            if vsub.frames_out != last:  # the recorder has taken these frames
                last = vsub.frames_out
                log.write(f"{video[last - 1].arrival}\n")
                log.flush()


async def kill_mid_part(folder: Path, clips: Path, key: Path, sent: Path, closed: int = 1) -> None:
    """Run this program on ``folder`` and SIGKILL it a second into the part after its first
    ``closed`` parts (2 s each)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.recorder.crash_child",
        *(str(p) for p in (folder, clips, key, sent)),
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chain = folder / "chain.jsonl"
            if chain.exists() and chain.read_text().count('"kind":"segment"') >= closed:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # mid-way through the next part
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()


if __name__ == "__main__":
    asyncio.run(main(*(Path(a) for a in sys.argv[1:5])))
