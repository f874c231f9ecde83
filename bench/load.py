"""Load generator: N synthetic callers, M aiortc viewers per caller, against a running server.

    python -m bench.load --server http://127.0.0.1:8080 --callers 2 --viewers 2 --seconds 20

Callers loop a pre-encoded clip (720p, about 1.5 Mbit/s, H.264 or VP8, plus Opus; encoded
once and cached) and send a GPS fix a second on the "location" data channel. Nothing here
decodes or encodes during the run: ``streamserver.ingest.install()`` makes the viewers'
receivers yield the encoded frames, so a viewer's frame is matched to the caller's send
time by its bytes. Latency is viewer receive minus caller send, both in this process: it
includes the loopback network, the client's RTP packetizing and its jitter buffer.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamserver import ingest
from streamserver.frames import EncodedFrame
from streamserver.synthetic import Clip, SyntheticCaller, build_clip

logger = logging.getLogger("bench.load")

CLIP_WIDTH, CLIP_HEIGHT, CLIP_FPS, CLIP_SECONDS = 1280, 720, 30, 4.0
CLIP_BIT_RATE = 1_500_000
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scenelink"
CSRF = {"X-Requested-With": "scenelink"}


def frame_key(data: bytes) -> bytes:
    """Identity of a video frame's bytes, blind to H.264 start-code length (3 or 4 bytes)."""
    return hashlib.blake2b(
        data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01"), digest_size=12
    ).digest()


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


def count_gaps(indices: list[int], period: int) -> int:
    """Frames missing from a sequence of looping clip indices (each should follow the last)."""
    lost = 0
    for a, b in zip(indices, indices[1:], strict=False):
        lost += (b - a - 1) % period
    return lost


@dataclass
class ViewerStats:
    join_to_first_keyframe: float | None = None
    video: int = 0
    audio: int = 0
    indices: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    unmatched: int = 0


@dataclass
class CallerStats:
    session_id: str
    video_sent: int = 0
    audio_sent: int = 0
    fixes_sent: int = 0
    viewers: list[ViewerStats] = field(default_factory=list)


@dataclass
class LoadReport:
    callers: list[CallerStats]
    seconds: float
    codec: str
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [x for c in self.callers for v in c.viewers for x in v.latencies]

    def latency_ms(self, q: float) -> float | None:
        values = sorted(self.latencies)
        if not values:
            return None
        return 1000 * values[min(len(values) - 1, int(q * len(values)))]

    @property
    def sent(self) -> int:
        return sum(c.video_sent + c.audio_sent for c in self.callers)

    @property
    def video_sent(self) -> int:
        return sum(c.video_sent for c in self.callers)

    @property
    def relayed(self) -> int:
        return sum(v.video + v.audio for c in self.callers for v in c.viewers)

    @property
    def viewer_video_lost(self) -> int:
        return sum(
            max(0, b - a - 1)
            for c in self.callers
            for v in c.viewers
            for a, b in zip(v.indices, v.indices[1:], strict=False)
        )

    def summary(self) -> dict[str, Any]:
        joins = [
            v.join_to_first_keyframe
            for c in self.callers
            for v in c.viewers
            if v.join_to_first_keyframe is not None
        ]
        return {
            "callers": len(self.callers),
            "viewers_per_caller": len(self.callers[0].viewers) if self.callers else 0,
            "codec": self.codec,
            "seconds": round(self.seconds, 1),
            "frames_sent": self.sent,
            "video_frames_sent": self.video_sent,
            "frames_relayed": self.relayed,
            "viewer_video_frames_lost": self.viewer_video_lost,
            "latency_ms_p50": self.latency_ms(0.5),
            "latency_ms_p95": self.latency_ms(0.95),
            "max_join_to_first_keyframe_s": max(joins) if joins else None,
            "errors": self.errors,
        }


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
        outbox = await self.call("GET", "/api/sms/outbox")
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
                    raise RuntimeError("viewer got a decoded frame: ingest.install() missing?")
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

    async def join(self, api: Api, session_id: str) -> None:
        self._joined = time.time()
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = self.pc.localDescription
        answer = await api.call(
            "POST", f"/api/sessions/{session_id}/viewers", {"sdp": offer.sdp, "type": offer.type}
        )
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()


class Caller:
    """A synthetic phone: the clip, a fix a second, and send times by frame bytes."""

    def __init__(self, clip: Clip, stats: CallerStats, index: int) -> None:
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
        self.sent_at[self.keys[i]] = (self.stats.video_sent, when)

    async def connect(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        offer = await self.peer.offer()
        async with http.post(
            base.rstrip("/") + "/api/caller/offer",
            json={"sdp": offer.sdp, "type": offer.type, "consent_version": "v1"},
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"caller offer: {response.status} {await response.text()}")
            answer = await response.json()
        await self.peer.accept(RTCSessionDescription(answer["sdp"], answer["type"]))
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
) -> LoadReport:
    """Start the callers and viewers, stream for ``seconds``, then end the sessions."""
    ingest.install()
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
            for i in range(callers):
                session_id, token = await api.create_session(
                    f"07700{900000 + i:06d}", f"LOAD-{run_id}-{i}"
                )
                stats = CallerStats(session_id)
                report.callers.append(stats)
                caller = Caller(clip, stats, i)
                started.append(caller)
                await caller.connect(http, server, token)
                for _ in range(viewers):
                    viewer = Viewer(ViewerStats(), caller.sent_at)
                    stats.viewers.append(viewer.stats)
                    watching.append(viewer)
                    await viewer.join(api, session_id)
            # ``on_steady("start")`` after the warm-up, ``("stop")`` before anything closes:
            # the benchmark measures the server between the two.
            await asyncio.sleep(warmup)
            if on_steady is not None:
                on_steady("start")
            await asyncio.sleep(seconds)
            if on_steady is not None:
                on_steady("stop")
        finally:
            # Stop sending first, let the last frames land, then end the sessions.
            await asyncio.gather(*(c.close() for c in started), return_exceptions=True)
            await asyncio.sleep(0.5)
            await asyncio.gather(*(v.close() for v in watching), return_exceptions=True)
            if end_sessions:
                for stats in report.callers:
                    try:
                        await api.call("POST", f"/api/sessions/{stats.session_id}/end")
                    except RuntimeError as exc:
                        report.errors.append(str(exc))
    return report


def recorded_frames(evidence_dir: Path, report: LoadReport, clip: Clip) -> dict[str, int]:
    """Video packets in the recordings of the report's sessions, demuxed (not decoded), and
    how many of the caller's frames are missing between the first and last recorded one."""
    import av

    from recorder.library import video_packets

    keys = {frame_key(p.data): i for i, p in enumerate(clip.video)}
    total = audio = lost = unmatched = 0
    for stats in report.callers:
        folder = evidence_dir / stats.session_id
        for part in sorted(folder.glob("media-*.mkv")):
            packets = video_packets(part)
            total += len(packets)
            with av.open(str(part)) as container:
                if container.streams.audio:
                    audio += sum(1 for p in container.demux(container.streams.audio[0]) if p.size)
            indices = []
            for data in packets:
                index = keys.get(frame_key(data))
                if index is None:
                    unmatched += 1
                else:
                    indices.append(index)
            lost += count_gaps(indices, len(keys))
    return {"video": total, "audio": audio, "lost": lost, "unmatched": unmatched}


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
        "--data-dir", type=Path, help="the server's data dir, to count recorded frames"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(
        run_load(
            args.server,
            args.user,
            args.password,
            callers=args.callers,
            viewers=args.viewers,
            seconds=args.seconds,
            codec=args.codec,
            cache_dir=args.cache,
        )
    )
    summary = report.summary()
    if args.data_dir is not None:
        time.sleep(1.0)  # the server finishes the parts after the sessions end
        clip = load_clip(args.codec, args.cache)
        summary["recorded"] = recorded_frames(args.data_dir / "evidence", report, clip)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            print(f"{key:32} {value}")
        print("latency = viewer receive - caller send, both here: includes the loopback network,")
        print("the client's packetizing and the viewer's jitter buffer.")
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
