"""Load generator: N synthetic callers, M aiortc viewers per caller, against a running server.

    python -m bench.load --server http://127.0.0.1:8080 --callers 2 --viewers 2 --seconds 20

Callers loop a pre-encoded clip (720p, about 1.5 Mbit/s, H.264 or VP8, plus Opus; encoded
once and cached) and send a GPS fix a second on the "location" data channel. Nothing here
decodes or encodes during the run: ``streamserver.patches.install()`` makes the viewers'
receivers yield the encoded frames, so a viewer's frame is matched to the caller's send
time by its bytes. Latency is viewer receive minus caller send, both in one process: it
includes the loopback network, the client's RTP packetizing and its reassembly.
``run_direct`` connects the same callers straight to viewers, with no server: the
difference is what the server adds. ``--processes`` spreads callers over processes
(bench.spread) so that one Python process is not what limits the load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamserver import patches
from streamserver.frames import EncodedFrame

from .losses import frame_key, recorded_frames
from .report import CallerStats, LoadReport, ViewerStats
from .spread import Plan, spread_load
from .synthetic import Clip, SyntheticCaller, build_clip

logger = logging.getLogger("bench.load")

CLIP_WIDTH, CLIP_HEIGHT, CLIP_FPS = 1280, 720, 30
# Frames are numbered by matching their bytes to the looping clip: a frame delayed by more than
# half a loop (6 s) would be numbered a loop out, so the loop is long for a saturated machine.
CLIP_SECONDS = 12.0
CLIP_BIT_RATE = 1_500_000
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scenelink"
CSRF = {"X-Requested-With": "scenelink"}


def load_clip(codec: str, cache_dir: Path) -> Clip:
    return build_clip(
        codec,
        cache_dir,
        seconds=CLIP_SECONDS,
        width=CLIP_WIDTH,
        height=CLIP_HEIGHT,
        fps=CLIP_FPS,
        bit_rate=CLIP_BIT_RATE,
    )


class Api:
    """The console API as an operator sees it (cookie sign-in, CSRF header)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base.rstrip("/")

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        async with self.http.request(
            method, self.base + path, json=body, headers=CSRF | kw.pop("headers", {}), **kw
        ) as response:
            text = await response.text()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: {response.status} {text[:200]}")
            return json.loads(text) if text else None

    async def login(self, username: str, password: str) -> None:
        await self.call("POST", "/api/login", {"username": username, "password": password})

    async def create_session(self, phone: str, ref: str) -> tuple[str, str]:
        """A new session and its caller token (read back from the development SMS outbox)."""
        view = await self.call("POST", "/api/sessions", {"phone": phone, "incident_ref": ref})
        session_id = str(view["id"])
        outbox = await self.call("GET", f"/api/sms/outbox?session_id={session_id}")
        for message in outbox["messages"]:
            if message["session_id"] == session_id:
                link = str(message["text"]).split()[-1]
                return session_id, link.rsplit("/c/", 1)[1]
        raise RuntimeError(f"no SMS for session {session_id} in the outbox")


class Viewer:
    """A console stand-in that never decodes: counts frames and times them."""

    def __init__(self, stats: ViewerStats, sent_at: dict[bytes, tuple[int, float]]) -> None:
        self.stats = stats
        self._sent_at = sent_at
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self._tasks: list[asyncio.Task[None]] = []
        self._joined = 0.0
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        stats = self.stats
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, EncodedFrame):
                    raise RuntimeError(
                        "viewer got a decoded frame: streamserver.patches.install() missing?"
                    )
                if frame.kind == "audio":
                    stats.audio += 1
                    continue
                stats.video += 1
                if stats.join_to_first_keyframe is None and frame.keyframe:
                    stats.join_to_first_keyframe = frame.arrival - self._joined
                sent = self._sent_at.get(frame_key(frame.data))
                if sent is None:
                    stats.unmatched += 1
                    continue
                stats.indices.append(sent[0])
                stats.latencies.append(frame.arrival - sent[1])
        except MediaStreamError:
            pass

    async def join(self, answerer: Answerer) -> None:
        """Watch a session through the server (``viewer_answerer``)."""
        self._joined = time.time()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        await self.pc.setRemoteDescription(await answerer(self.pc.localDescription))

    async def answer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Take a caller's offer directly, with no server between (the baseline path)."""
        self._joined = time.time()
        await self.pc.setRemoteDescription(offer)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


Answerer = Callable[[RTCSessionDescription], Awaitable[RTCSessionDescription]]


def viewer_answerer(api: Api, session_id: str) -> Answerer:
    """The console's way in: POST a viewer's offer for a session as a signed-in operator."""

    async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
        path = f"/api/sessions/{session_id}/viewers"
        body = await api.call("POST", path, {"sdp": offer.sdp, "type": offer.type})
        return RTCSessionDescription(body["sdp"], body["type"])

    return answer


def server_answerer(http: aiohttp.ClientSession, base: str, token: str) -> Answerer:
    """The caller page's way in: POST the offer with the link's token."""

    async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
        async with http.post(
            base.rstrip("/") + "/api/caller/offer",
            json={"sdp": offer.sdp, "type": offer.type, "consent_version": "v1"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"caller offer: {response.status} {await response.text()}")
            body = await response.json()
        return RTCSessionDescription(body["sdp"], body["type"])

    return answer


class Caller:
    """A synthetic phone: the clip, a fix a second, and send times by frame bytes."""

    def __init__(self, clip: Clip, stats: CallerStats, index: int) -> None:
        """``index`` numbers the callers of a whole run (all processes): it places the walk."""
        self.clip = clip
        self.stats = stats
        self.index = index
        self.peer = SyntheticCaller(clip)
        self.keys = [frame_key(p.data) for p in clip.video]
        # key -> (sequence number of the send, wall clock); overwritten every lap.
        self.sent_at: dict[bytes, tuple[int, float]] = {}
        assert self.peer.video is not None
        self.peer.video.on_sent = self._on_video_sent
        self._fixes: asyncio.Task[None] | None = None

    def _on_video_sent(self, i: int, when: float) -> None:
        self.stats.video_sent += 1
        if self.stats.first_sent_at is None:
            self.stats.first_sent_at = when
        self.sent_at[self.keys[i]] = (self.stats.video_sent, when)

    async def connect(self, answerer: Answerer) -> None:
        """Offer, take the answer from ``answerer`` (the server, or a viewer directly)."""
        await self.peer.accept(await answerer(await self.peer.offer()))
        self._fixes = asyncio.ensure_future(self._send_fixes())

    async def _send_fixes(self) -> None:
        channel = self.peer.channel
        if channel.readyState != "open":
            opened = asyncio.Event()
            channel.on("open", opened.set)
            await opened.wait()
        lat, lon = 51.5 + self.index * 0.001, -0.12
        while channel.readyState == "open":
            lat += 0.00001  # about a metre a second: a plausible walk
            fix = {
                "type": "fix",
                "lat": round(lat, 6),
                "lon": lon,
                "accuracy": 8.0,
                "timestamp": int(time.time() * 1000),
            }
            channel.send(json.dumps(fix))
            self.stats.fixes_sent += 1
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._fixes is not None:
            self._fixes.cancel()
        if self.peer.audio is not None:
            self.stats.audio_sent = self.peer.audio.sent
        await self.peer.close()


Hold = Callable[[], Awaitable[None]]
"""Waits while the load streams: the caller of _stream decides when the run ends."""


def steady_hold(seconds: float, warmup: float, on_steady: Callable[[str], None] | None) -> Hold:
    """Warm up, then ``on_steady("start")``, ``seconds`` of load, ``on_steady("stop")``: the
    benchmark measures the server between the two marks, before anything closes."""

    async def hold() -> None:
        await asyncio.sleep(warmup)
        if on_steady is not None:
            on_steady("start")
        await asyncio.sleep(seconds)
        if on_steady is not None:
            on_steady("stop")

    return hold


async def run_load(
    server: str,
    username: str,
    password: str,
    *,
    callers: int,
    viewers: int,
    seconds: float,
    codec: str = "H264",
    cache_dir: Path = DEFAULT_CACHE,
    end_sessions: bool = True,
    on_steady: Callable[[str], None] | None = None,
    warmup: float = 0.0,
    first_index: int = 0,
    hold: Hold | None = None,
) -> LoadReport:
    """Start the callers and viewers, stream (``hold``; by default ``steady_hold``), then end
    the sessions. Callers are numbered from ``first_index`` (one process's share of a run)."""
    patches.install()
    clip = load_clip(codec, cache_dir)
    report = LoadReport([], seconds, codec)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        api = Api(http, server)
        await api.login(username, password)
        run_id = int(time.time()) % 100000
        started: list[Caller] = []
        watching: list[Viewer] = []
        try:
            for i in range(first_index, first_index + callers):
                session_id, token = await api.create_session(
                    f"07700{900000 + i:06d}", f"LOAD-{run_id}-{i}"
                )
                stats = CallerStats(session_id)
                report.callers.append(stats)
                caller = Caller(clip, stats, i)
                started.append(caller)
                await caller.connect(server_answerer(http, server, token))
                for _ in range(viewers):
                    viewer = Viewer(ViewerStats(), caller.sent_at)
                    stats.viewers.append(viewer.stats)
                    watching.append(viewer)
                    await viewer.join(viewer_answerer(api, session_id))
            await (hold or steady_hold(seconds, warmup, on_steady))()
        finally:
            await _wind_down(started, watching)
            if end_sessions:
                for stats in report.callers:
                    try:
                        await api.call("POST", f"/api/sessions/{stats.session_id}/end")
                    except RuntimeError as exc:
                        report.errors.append(str(exc))
    return report


async def run_direct(
    *, seconds: float, codec: str = "H264", cache_dir: Path = DEFAULT_CACHE, warmup: float = 0.0
) -> LoadReport:
    """One caller streaming straight to one viewer in this process, no server: the baseline
    that through-server latency is compared with (same clip, packetizing and reassembly)."""
    patches.install()
    clip = load_clip(codec, cache_dir)
    stats = CallerStats("direct")
    report = LoadReport([stats], seconds, codec)
    caller = Caller(clip, stats, 0)
    viewer = Viewer(ViewerStats(), caller.sent_at)
    stats.viewers.append(viewer.stats)
    try:
        await caller.connect(viewer.answer)
        await steady_hold(seconds, warmup, None)()
    finally:
        await _wind_down([caller], [viewer])
    return report


async def _wind_down(callers: list[Caller], viewers: list[Viewer]) -> None:
    """Stop sending first, let the last frames land, then hang up the viewers."""
    await asyncio.gather(*(c.close() for c in callers), return_exceptions=True)
    await asyncio.sleep(0.5)
    await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--server", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--callers", type=int, default=1)
    parser.add_argument("--viewers", type=int, default=1, help="viewers per caller")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--codec", choices=["H264", "VP8"], default="H264")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="clip cache folder")
    parser.add_argument("--user", default=os.environ.get("SCENELINK_BENCH_USER", "bench"))
    parser.add_argument(
        "--password", default=os.environ.get("SCENELINK_BENCH_PASSWORD", "bench-pass")
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="load processes (default: one per core)"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="the server's data dir, to count recorded frames"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    load_clip(args.codec, args.cache)  # encode once, before any process needs it
    plan = Plan(
        args.server,
        args.user,
        args.password,
        args.callers,
        args.viewers,
        args.seconds,
        args.codec,
        args.cache,
    )
    report = spread_load(run_load, plan, args.processes or os.cpu_count() or 1)
    if args.data_dir is not None:
        time.sleep(1.0)  # the server finishes the parts after the sessions end
        clip = load_clip(args.codec, args.cache)
        recorded = recorded_frames(args.data_dir / "evidence", report, clip)
    summary = report.summary()
    if args.data_dir is not None:
        summary["recorded"] = recorded
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:32} {value}")
        print("latency = viewer receive - caller send, in one load process: it includes the")
        print("loopback network, the client's packetizing and both reassembly steps.")
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
