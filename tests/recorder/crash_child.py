"""A recording "server" for the SIGKILL test: streams a clip into a SessionRecorder forever.

argv: evidence folder, clip cache dir, key path, sent log. Each relayed video frame's arrival
time is appended to the sent log so that the test can measure what the kill lost.
"""

from __future__ import annotations

import asyncio
import sys
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
    import time

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


if __name__ == "__main__":
    asyncio.run(main(*(Path(a) for a in sys.argv[1:5])))
