"""Janus as the benchmark's peer: a C SFU measured in the same run as SceneLink.

Janus 1.1.2 from Debian's ``janus`` package, configured here in a temporary folder: the HTTP API
on a loopback port (no admin API, no other transport or plugin), ICE on the one local IPv4
address that the aiortc peers use, with no STUN or NAT settings (aiortc never gathers 127.0.0.1,
and Janus given ``ice_enforce_list = "lo"`` offered every other address instead; packets between
the host's own addresses go through the kernel's loopback all the same, never onto a network),
and the VideoRoom plugin with each caller in a room of its own that records (``record: true``,
``rec_dir``) to Janus's .mjr files. The same synthetic callers and viewers as SceneLink's runs
(bench.load's Caller and Viewer) drive it: the caller publishes (``joinandconfigure`` with its
offer, Janus answers), each viewer subscribes (``join``, Janus offers, the viewer answers with
``start``). ``run_janus_load`` is called like bench.load.run_load, so bench.spread spreads it
over processes the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aioice.ice import get_host_addresses
from aiortc import RTCSessionDescription

from streamserver import patches

from .load import DEFAULT_CACHE, Caller, Hold, Viewer, _wind_down, load_clip, steady_hold
from .report import CallerStats, LoadReport, ViewerStats

VIDEOROOM = "janus.plugin.videoroom"
PLUGIN = "libjanus_videoroom.so"
TRANSPORT = "libjanus_http.so"
INSTALL_HINT = "apt-get install janus (Debian 12: Janus 1.1.2)"
FIRST_ROOM = 1000  # room of caller i: FIRST_ROOM + i
MJR_MAGIC = b"MJR00002"
MJR_FRAME = struct.Struct(">4sIH")  # "MEET", ms since the recording started, RTP length
Jsep = dict[str, str]


def janus_binary() -> str | None:
    """The ``janus`` command, or None where the package is not installed."""
    return shutil.which("janus")


def module_folder() -> Path:
    """Where Debian puts Janus's plugins and transports (``/usr/lib/<triplet>/janus``)."""
    for folder in sorted(Path("/usr/lib").glob("*/janus")):
        if (folder / "plugins" / PLUGIN).exists():
            return folder
    raise FileNotFoundError(f"no Janus VideoRoom plugin under /usr/lib/*/janus: {INSTALL_HINT}")


def jcfg(sections: dict[str, dict[str, str | int | bool]]) -> str:
    """libconfig text (Janus's .jcfg) for flat sections of plain values."""
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"{name}: {{")
        for key, value in values.items():
            text = ("true" if value else "false") if isinstance(value, bool) else json.dumps(value)
            lines.append(f"\t{key} = {text}")
        lines.append("}")
    return "\n".join(lines) + "\n"


def host_address() -> str:
    """The address the benchmark's aiortc peers use: the first IPv4 one aioice gathers."""
    addresses = get_host_addresses(use_ipv4=True, use_ipv6=False)
    if not addresses:
        raise RuntimeError("no IPv4 address besides 127.0.0.1: aiortc's peers cannot connect")
    return addresses[0]


def write_config(folder: Path, port: int, modules: Path, address: str) -> Path:
    """Janus's configuration for the benchmark in ``folder``; returns janus.jcfg's path.

    Only the VideoRoom plugin and the HTTP transport are loaded (links in folder/plugins and
    folder/transports), so nothing else listens or costs CPU. Threading is Janus's default
    (a thread per handle), the configuration the issue's targets compare with.
    """
    for kind, name in (("plugins", PLUGIN), ("transports", TRANSPORT)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        (folder / kind / name).symlink_to(modules / kind / name)
    (folder / "events").mkdir(exist_ok=True)
    (folder / "loggers").mkdir(exist_ok=True)
    general: dict[str, str | int | bool] = {
        "configs_folder": str(folder),
        "plugins_folder": str(folder / "plugins"),
        "transports_folder": str(folder / "transports"),
        "events_folder": str(folder / "events"),
        "loggers_folder": str(folder / "loggers"),
        "debug_level": 3,  # warnings and errors
        "debug_colors": False,
        "server_name": "scenelink-bench",
        "session_timeout": 60,
    }
    (folder / "janus.jcfg").write_text(
        jcfg(
            {
                "general": general,
                "media": {},
                "nat": {"nice_debug": False, "ice_enforce_list": address, "ignore_mdns": True},
                "events": {"broadcast": False},
            }
        )
    )
    (folder / "janus.transport.http.jcfg").write_text(
        jcfg(
            {
                "general": {
                    "json": "compact",
                    "base_path": "/janus",
                    "http": True,
                    "port": port,
                    "ip": "127.0.0.1",
                    "https": False,
                },
                "admin": {"admin_http": False, "admin_https": False},
            }
        )
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text(jcfg({"general": {"events": False}}))
    return folder / "janus.jcfg"


def janus_command(config: Path) -> list[str]:
    binary = janus_binary()
    if binary is None:
        raise FileNotFoundError(f"janus is not installed: {INSTALL_HINT}")
    # Without --configs-folder, Janus reads the plugins' and transports' files from /etc/janus.
    return [binary, "--config", str(config), "--configs-folder", str(config.parent), "-o"]


# The VideoRoom requests the benchmark sends (the message bodies; offers and answers go
# beside them as "jsep").


def create_room(room: int, rec_dir: Path, codec: str) -> dict[str, Any]:
    """A room for one caller that records every stream it publishes to ``rec_dir``."""
    return {
        "request": "create",
        "room": room,
        "publishers": 1,
        "record": True,
        "rec_dir": str(rec_dir),
        "videocodec": codec.lower(),
        "audiocodec": "opus",
        "bitrate": 0,  # no REMB cap: the clip's own rate, as SceneLink gets it
    }


def publish(room: int, display: str) -> dict[str, Any]:
    """Join as publisher and send the offer (given as jsep) in one request."""
    return {"request": "joinandconfigure", "room": room, "ptype": "publisher", "display": display}


def subscribe(room: int, feed: int) -> dict[str, Any]:
    """Join as subscriber of one publisher's streams: Janus answers with an offer."""
    return {"request": "join", "room": room, "ptype": "subscriber", "streams": [{"feed": feed}]}


START: dict[str, Any] = {"request": "start"}  # with the subscriber's answer as jsep


class JanusError(RuntimeError):
    pass


def plugin_data(reply: dict[str, Any]) -> dict[str, Any]:
    """The VideoRoom's part of a reply or event; a Janus or plugin error raises."""
    if reply.get("janus") == "error":
        raise JanusError(f"janus: {reply['error']}")
    data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
    if "error" in data:
        raise JanusError(f"videoroom {data.get('error_code')}: {data['error']}")
    return data


class JanusSession:
    """One Janus API session over HTTP, with a long poll that hands each asynchronous
    plugin event to the request (by transaction) that it answers."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base.rstrip("/") + "/janus"
        self.id = 0
        self._ids: Iterator[int] = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._up: dict[int, asyncio.Event] = {}
        self._poll: asyncio.Task[None] | None = None

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        transaction = f"t{next(self._ids)}"
        async with self.http.post(self.base + path, json=body | {"transaction": transaction}) as r:
            reply: dict[str, Any] = await r.json(content_type=None)
        if reply.get("janus") == "error":
            raise JanusError(f"janus {body.get('janus')}: {reply['error']}")
        return reply

    async def open(self) -> None:
        self.id = (await self._post("", {"janus": "create"}))["data"]["id"]
        self._poll = asyncio.ensure_future(self._long_poll())

    async def attach(self) -> int:
        reply = await self._post(f"/{self.id}", {"janus": "attach", "plugin": VIDEOROOM})
        handle: int = reply["data"]["id"]
        return handle

    async def request(self, handle: int, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (create): the reply is the result."""
        return plugin_data(await self._post(f"/{self.id}/{handle}", message(body)))

    async def ask(
        self, handle: int, body: dict[str, Any], jsep: RTCSessionDescription | None = None
    ) -> tuple[dict[str, Any], Jsep | None]:
        """An asynchronous request (join, start): Janus acks, then its event answers."""
        transaction = f"t{next(self._ids)}"
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[transaction] = waiting
        payload = message(body, jsep) | {"transaction": transaction}
        async with self.http.post(f"{self.base}/{self.id}/{handle}", json=payload) as r:
            plugin_data(await r.json(content_type=None))  # {"janus": "ack"} or an error
        event = await asyncio.wait_for(waiting, 10)
        return plugin_data(event), event.get("jsep")

    async def connected(self, handle: int) -> None:
        """Until the handle's PeerConnection is up ("webrtcup"): a publisher's feed cannot be
        subscribed to before."""
        await asyncio.wait_for(self._up.setdefault(handle, asyncio.Event()).wait(), 10)

    async def _long_poll(self) -> None:
        while True:
            async with self.http.get(f"{self.base}/{self.id}?maxev=10") as r:
                reply = await r.json(content_type=None)
            for event in reply if isinstance(reply, list) else [reply]:
                if event.get("janus") == "webrtcup":
                    self._up.setdefault(int(event["sender"]), asyncio.Event()).set()
                waiting = self._waiting.pop(str(event.get("transaction")), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result(event)

    async def close(self) -> None:
        """Destroy the session: its handles leave their rooms, and the recordings close."""
        if self._poll is not None:
            self._poll.cancel()
        if self.id:
            try:
                await self._post(f"/{self.id}", {"janus": "destroy"})
            except (JanusError, aiohttp.ClientError):
                pass  # already gone (Janus stopping): nothing to close


def message(body: dict[str, Any], jsep: RTCSessionDescription | None = None) -> dict[str, Any]:
    """A Janus API "message" to a plugin handle, with an SDP offer or answer if given."""
    out: dict[str, Any] = {"janus": "message", "body": body}
    if jsep is not None:
        out["jsep"] = {"type": jsep.type, "sdp": jsep.sdp}
    return out


async def run_janus_load(
    server: str,
    username: str = "",
    password: str = "",
    *,
    callers: int,
    viewers: int,
    seconds: float,
    codec: str = "H264",
    cache_dir: Path = DEFAULT_CACHE,
    rec_dir: str,
    first_index: int = 0,
    hold: Hold | None = None,
) -> LoadReport:
    """bench.load.run_load against Janus at ``server``: a room per caller, recording to
    ``rec_dir`` (bind it with functools.partial for bench.spread); no sign-in."""
    del username, password  # Janus's API has no accounts in this configuration
    patches.install()
    clip = load_clip(codec, cache_dir)
    report = LoadReport([], seconds, codec)
    async with aiohttp.ClientSession() as http:
        sessions: list[JanusSession] = []
        started: list[Caller] = []
        watching: list[Viewer] = []
        try:
            for i in range(first_index, first_index + callers):
                room = FIRST_ROOM + i
                janus = JanusSession(http, server)
                sessions.append(janus)
                await janus.open()
                stats = CallerStats(f"room-{room}")
                report.callers.append(stats)
                caller = Caller(clip, stats, i)
                started.append(caller)
                publisher = await janus.attach()
                await janus.request(publisher, create_room(room, Path(rec_dir), codec))
                joined: dict[str, Any] = {}

                async def answer(
                    offer: RTCSessionDescription,
                    janus: JanusSession = janus,
                    room: int = room,
                    joined: dict[str, Any] = joined,
                    publisher: int = publisher,
                ) -> RTCSessionDescription:
                    data, jsep = await janus.ask(publisher, publish(room, "caller"), offer)
                    if jsep is None:
                        raise JanusError(f"room {room}: no answer to the publisher's offer")
                    joined.update(data)
                    return RTCSessionDescription(jsep["sdp"], jsep["type"])

                await caller.connect(answer)
                await janus.connected(publisher)
                for _ in range(viewers):
                    viewer = Viewer(ViewerStats(), caller.sent_at)
                    stats.viewers.append(viewer.stats)
                    watching.append(viewer)
                    handle = await janus.attach()
                    _, offer = await janus.ask(handle, subscribe(room, int(joined["id"])))
                    if offer is None:
                        raise JanusError(f"room {room}: no offer for a subscriber")
                    reply = await viewer.answer(RTCSessionDescription(offer["sdp"], offer["type"]))
                    await janus.ask(handle, START, reply)
            await (hold or steady_hold(seconds, 0.0, None))()
        finally:
            await _wind_down(started, watching)
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
    return report


@dataclass(frozen=True)
class Recording:
    """What one .mjr file holds: its kind ("video" or "audio"), RTP packets and frames
    (distinct RTP timestamps: a video frame spans several packets, an Opus frame one)."""

    kind: str
    packets: int
    frames: int


def read_mjr(path: Path) -> Recording:
    """Count a Janus recording's packets and frames (the MJR00002 layout: magic, a JSON
    header, then "MEET" + time + length + RTP packet per packet). A file cut short by a
    stop counts up to its last whole packet."""
    buf = path.read_bytes()
    if not buf.startswith(MJR_MAGIC):
        raise ValueError(f"{path}: not a Janus MJR00002 recording")
    (size,) = struct.unpack_from(">H", buf, len(MJR_MAGIC))
    start = len(MJR_MAGIC) + 2
    info = json.loads(buf[start : start + size])
    kind = {"v": "video", "a": "audio"}.get(info.get("t"), "data")
    pos = start + size
    packets = 0
    stamps: set[int] = set()
    while pos + MJR_FRAME.size <= len(buf):
        tag, _, length = MJR_FRAME.unpack_from(buf, pos)
        pos += MJR_FRAME.size
        if tag != b"MEET" or pos + length > len(buf) or length < 12:
            break
        packets += 1
        stamps.add(int.from_bytes(buf[pos + 4 : pos + 8], "big"))  # RTP timestamp
        pos += length
    return Recording(kind, packets, len(stamps))


def count_recorded(report: LoadReport, rec_dir: Path) -> dict[str, int]:
    """Frames recorded over the run, by kind; each caller's ``recorder_missed`` becomes its
    video frames sent less those its room's recording holds (counted, not matched by bytes)."""
    rooms = recorded_frames(rec_dir)
    for caller in report.callers:
        got = rooms.get(int(caller.session_id.removeprefix("room-")), {}).get("video", 0)
        caller.recorder_missed = max(0, caller.video_sent - got)
    return {kind: sum(room[kind] for room in rooms.values()) for kind in ("video", "audio")}


def recorded_frames(rec_dir: Path) -> dict[int, dict[str, int]]:
    """Frames recorded per room, by kind: {room: {"video": n, "audio": m}}."""
    out: dict[int, dict[str, int]] = {}
    for path in sorted(rec_dir.glob("videoroom-*.mjr")):
        room = int(path.name.split("-")[1])
        recording = read_mjr(path)
        counts = out.setdefault(room, {"video": 0, "audio": 0})
        if recording.kind in counts:
            counts[recording.kind] += recording.frames
    return out
