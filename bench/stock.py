"""aiortc's stock media path, for comparison: decode on receive, MediaRelay of decoded frames,
one encoder per viewer, MediaRecorder (which transcodes). No streamserver.ingest here.

It speaks the few API calls that bench.load makes (login, sessions, SMS outbox, caller and
viewer offers, end), so the same load runs against it:

    python -m bench.stock --port 8090 --data-dir /tmp/stock
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
from pathlib import Path
from typing import Any

import uvloop
from aiohttp import web
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamTrack


class StockSession:
    def __init__(self, session_id: str, folder: Path, codec: str) -> None:
        self.id = session_id
        self.folder = folder
        self.codec = codec
        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pcs: list[RTCPeerConnection] = []
        self.recorder: MediaRecorder | None = None

    async def caller(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        pc = RTCPeerConnection()
        self.pcs.append(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[track.kind] = track

        await pc.setRemoteDescription(offer)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.recorder = MediaRecorder(str(self.folder / "media-001.mkv"))
        for kind in ("video", "audio"):
            if kind in self.tracks:
                self.recorder.addTrack(self.relay.subscribe(self.tracks[kind]))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.recorder.start()
        return pc.localDescription

    async def viewer(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        pc = RTCPeerConnection()
        self.pcs.append(pc)
        for kind in ("video", "audio"):
            if kind in self.tracks:
                transceiver = pc.addTransceiver(
                    self.relay.subscribe(self.tracks[kind]), direction="sendonly"
                )
                if kind == "video":
                    caps = RTCRtpSender.getCapabilities("video").codecs
                    mime = f"video/{self.codec}".lower()
                    transceiver.setCodecPreferences(
                        [c for c in caps if c.mimeType.lower() in (mime, "video/rtx")]
                    )
        await pc.setRemoteDescription(offer)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription

    async def close(self) -> None:
        if self.recorder is not None:
            await self.recorder.stop()
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


def make_app(data_dir: Path, codec: str) -> web.Application:
    sessions: dict[str, StockSession] = {}
    counter = itertools.count(1)
    outbox: list[dict[str, Any]] = []
    routes = web.RouteTableDef()

    @routes.post("/api/login")
    async def login(request: web.Request) -> web.Response:
        return web.json_response({})

    @routes.post("/api/sessions")
    async def create(request: web.Request) -> web.Response:
        session_id = f"stock{next(counter)}"
        sessions[session_id] = StockSession(session_id, data_dir / "evidence" / session_id, codec)
        outbox.append({"session_id": session_id, "text": f"link: http://x/c/{session_id}"})
        return web.json_response({"id": session_id}, status=201)

    @routes.get("/api/sms/outbox")
    async def sms(request: web.Request) -> web.Response:
        return web.json_response({"messages": outbox})

    @routes.post("/api/caller/offer")
    async def caller(request: web.Request) -> web.Response:
        session = sessions[request.headers["Authorization"].split()[1]]
        body = await request.json()
        answer = await session.caller(RTCSessionDescription(body["sdp"], body["type"]))
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    @routes.post("/api/sessions/{sid}/viewers")
    async def viewer(request: web.Request) -> web.Response:
        body = await request.json()
        session = sessions[request.match_info["sid"]]
        answer = await session.viewer(RTCSessionDescription(body["sdp"], body["type"]))
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    @routes.post("/api/sessions/{sid}/end")
    async def end(request: web.Request) -> web.Response:
        session = sessions.pop(request.match_info["sid"], None)
        if session is not None:
            await session.close()
        return web.json_response({})

    app = web.Application()
    app.add_routes(routes)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.stock")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--codec", choices=["H264", "VP8"], default="H264")
    args = parser.parse_args(argv)
    web.run_app(
        make_app(args.data_dir, args.codec),
        host="127.0.0.1",
        port=args.port,
        print=None,
        loop=uvloop.new_event_loop(),  # the same loop as ours, so the ratio is the media path's
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
