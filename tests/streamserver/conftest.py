"""Shared fixtures: cached synthetic clips (encoded once per test run), a loopback call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from bench.synthetic import Clip, SyntheticCaller, build_clip

Call = tuple[SyntheticCaller, RTCPeerConnection, dict[str, MediaStreamTrack]]


@asynccontextmanager
async def _loopback(clip: Clip) -> AsyncIterator[Call]:
    """A synthetic caller connected to a bare aiortc peer connection; its tracks by kind."""
    caller = SyntheticCaller(clip)
    server = RTCPeerConnection()
    tracks: dict[str, MediaStreamTrack] = {}

    @server.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        tracks[track.kind] = track

    try:
        await server.setRemoteDescription(await caller.offer())
        await server.setLocalDescription(await server.createAnswer())
        await caller.accept(server.localDescription)
        yield caller, server, tracks
    finally:
        await caller.close()
        await server.close()


@pytest.fixture
def loopback() -> Callable[[Clip], AbstractAsyncContextManager[Call]]:
    return _loopback


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def h264_clip(clip_dir: Path) -> Clip:
    return build_clip("H264", clip_dir)


@pytest.fixture(scope="session")
def vp8_clip(clip_dir: Path) -> Clip:
    return build_clip("VP8", clip_dir)
