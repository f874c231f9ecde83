"""A console stand-in for tests: recvonly video and audio, keeping every encoded frame.

With ``streamserver.patches.install()`` its own receivers yield EncodedFrame, so what a viewer
got can be compared byte for byte with what was forwarded and recorded.
"""

from __future__ import annotations

import asyncio
import itertools

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.load import Answerer
from streamserver.frames import EncodedFrame


class Viewer:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.frames: dict[str, list[EncodedFrame]] = {"video": [], "audio": []}
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, EncodedFrame)
                self.frames[track.kind].append(frame)
        except MediaStreamError:
            pass

    async def join(self, answerer: Answerer) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.pc.setRemoteDescription(await answerer(self.pc.localDescription))

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


def is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    """``part`` appears in ``whole`` contiguously, in order."""
    n = len(part)
    return n > 0 and any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


def in_order(frames: list[tuple[bytes, bool]], whole: list[bytes]) -> bool:
    """Each of ``frames`` not after loss is one of ``whole``, byte for byte, and they come in
    its order (frames between may be missing: a viewer that fell behind skips to a keyframe)."""
    at = 0
    for data, after_loss in frames:
        if after_loss:
            continue
        try:
            at = whole.index(data, at) + 1
        except ValueError:
            return False
    return True


def runs_in_order(recorded: list[tuple[bytes, bool]], sent: list[bytes]) -> bool:
    """Each run of recorded frames between frames after loss is a run of ``sent``, and the
    runs come in the order sent."""
    at = 0
    for after_loss, frames in itertools.groupby(recorded, key=lambda frame: frame[1]):
        if after_loss:
            continue
        run = [digest for digest, _ in frames]
        found = next(
            (i for i in range(at, len(sent) - len(run) + 1) if sent[i : i + len(run)] == run),
            None,
        )
        if found is None:
            return False
        at = found + len(run)
    return True
