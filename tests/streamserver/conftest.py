"""Shared fixtures: cached synthetic clips (encoded once per test run), a loopback call, the
per-packet path (C extension or pure Python) the media tests run on, and a monotonic clock moved
by hand."""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap

from bench.synthetic import Clip, SyntheticCaller, build_clip
from streamserver import native, nativesrtp

if TYPE_CHECKING:
    from streamserver.native import Assembled, RtpFields

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


@pytest.fixture(params=["native", "python"])
def media_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test on the C ingress, then on the pure-Python path (SCENELINK_NO_EXTENSIONS).

    On the C path every DTLS transport set up during the test must have had a C receiver: a
    fallback to pylibsrtp would otherwise pass unseen. It is skipped only where the whole run
    asks for the Python path; an extension that fails to import fails it.
    """
    if request.param == "python":
        monkeypatch.setenv(native.ENV, "1")
        monkeypatch.setattr(native, "NATIVE", None)
        yield "python"
        return
    if native.disabled():
        pytest.skip(f"{native.ENV} is set: the C path is not built")
    monkeypatch.setattr(native, "NATIVE", importlib.import_module("streamserver.native._native"))
    attached = []
    attach = nativesrtp.attach

    def counting(dtls: Any) -> None:
        attach(dtls)
        attached.append(dtls)

    monkeypatch.setattr(nativesrtp, "attach", counting)
    yield "native"
    assert all(nativesrtp.receiver_of(d) is not None for d in attached)


@pytest.fixture
def c_extension() -> ModuleType:
    """The C extension, for a test that runs both paths itself; skipped only where the whole
    run asks for the Python path (an extension that fails to import fails it)."""
    if native.disabled():
        pytest.skip(f"{native.ENV} is set: the C path is not built")
    assert native.NATIVE is not None, "the C extension did not load"
    return native.NATIVE


class Clock:
    """time.monotonic, moved by hand (the Python reassembly reads it through ``time``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved_by_hand = Clock()
    monkeypatch.setattr(time, "monotonic", moved_by_hand)
    return moved_by_hand


def extensions_map() -> HeaderExtensionsMap:
    """aiortc's map for a browser's usual extensions (mid, abs-send-time, audio level)."""
    extensions = HeaderExtensionsMap()
    extensions.configure(
        RTCRtpParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(1, "urn:ietf:params:rtp-hdrext:sdes:mid"),
                RTCRtpHeaderExtensionParameters(
                    3, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
                ),
                RTCRtpHeaderExtensionParameters(4, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
            ]
        )
    )
    return extensions


def unrouted(answer: RtpFields | Assembled | None) -> RtpFields | None:
    """SrtpReceiver.receive's answer for a stream with no route: its fields, or None."""
    if answer is not None and len(answer) == 4:
        raise AssertionError(f"a routed stream's answer: {answer!r}")
    return answer
