"""Two SceneLink nodes (separate processes) with one redis-server and one S3 store (issue 15).

A caller on node A is watched by a viewer and an officer link that enter through node B; the
session is ended through B. A second session survives A's drain (SIGTERM: handed over to B)
and then B's sudden death (SIGKILL: a restarted A takes it over): each time the caller's
fresh offer, sent to the surviving node as the page sends it, is answered within 10 s and
viewers get frames again.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCSessionDescription

from bench.load import Answerer, Api, server_answerer, viewer_answerer
from bench.synthetic import Clip, SyntheticCaller
from streamserver import patches
from tests.conftest import s3_bucket
from tests.e2e.conftest import RunningServer, start_server
from tests.harness import redis_server
from tests.viewer import Viewer

LEASE_S = 1.5
RESUME_S = 10.0  # the limit for a caller to resume on another node


@contextmanager
def node(folder: Path, name: str, common: dict[str, str]) -> Iterator[RunningServer]:
    (folder / name).mkdir()
    names = {"SCENELINK_NODE_ID": name, "SCENELINK_NODE_NAME": name}
    yield from start_server(folder / name, **(names | common))


async def signed_in(http: aiohttp.ClientSession, server: RunningServer) -> Api:
    api = Api(http, server.url)
    await api.login("alice", "alice-pass")
    return api


def officer_answerer(http: aiohttp.ClientSession, base: str, token: str) -> Answerer:
    async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
        async with http.post(
            base + "/api/officer/viewers",
            json={"sdp": offer.sdp, "type": offer.type},
            headers={"Authorization": f"Bearer {token}", "X-Requested-With": "scenelink"},
        ) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        return RTCSessionDescription(body["sdp"], body["type"])

    return answer


async def frames_through(answerer: Answerer, within_s: float = 10.0) -> Viewer:
    """A viewer that has received video frames (else the test fails)."""
    viewer = Viewer()
    await viewer.join(answerer)
    deadline = time.monotonic() + within_s
    while len(viewer.frames["video"]) < 5:
        assert time.monotonic() < deadline, "the viewer got no frames: black video"
        await asyncio.sleep(0.1)
    return viewer


async def caller_through(
    http: aiohttp.ClientSession, base: str, token: str, clip: Clip, within_s: float = RESUME_S
) -> tuple[SyntheticCaller, float]:
    """A caller's fresh connection, offered again (as the page does) until one is answered:
    the caller and how long that took."""
    started = time.monotonic()
    while True:
        caller = SyntheticCaller(clip)
        try:
            await caller.accept(await server_answerer(http, base, token)(await caller.offer()))
            return caller, time.monotonic() - started
        except RuntimeError as refused:  # 503 while the session moves
            await caller.close()
            assert time.monotonic() - started < within_s, f"not resumed: {refused}"
            await asyncio.sleep(0.5)


def recorded(spool: Path, session_id: str) -> list[dict[str, Any]]:
    path = spool / session_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def events_of(spool: Path, session_id: str) -> list[str]:
    return [e["event"] for e in recorded(spool, session_id)]


def moves(spool: Path, session_id: str) -> list[tuple[str, str]]:
    """Where this node continued another's recording: (from node, reason)."""
    return [
        (e["from_node"], e["reason"])
        for e in recorded(spool, session_id)
        if e["event"] == "recording_moved"
    ]


async def test_two_nodes_serve_drain_and_survive_a_death(
    tmp_path: Path, s3_server: str, clips: dict[str, Clip]
) -> None:
    clip = clips["H264"]
    patches.install()  # the test's viewers keep encoded frames
    with ExitStack() as stack:
        redis = stack.enter_context(redis_server(tmp_path))
        spool = tmp_path / "spool"
        common = {
            "REDIS_URL": redis,
            "SCENELINK_TOKEN_SECRET": "one secret for the whole cluster",
            "SCENELINK_CLUSTER_LEASE_S": str(LEASE_S),
            "SCENELINK_DRAIN_S": "1",
            "SCENELINK_S3_BUCKET": s3_bucket(s3_server).bucket,
            "SCENELINK_S3_ENDPOINT_URL": s3_server,
            # Every node's evidence spool in one folder they all mount: a survivor uploads
            # what a dead node had not (Evidence.rescue).
            "SCENELINK_SHARED_SPOOL": str(spool),
        }
        a = stack.enter_context(node(tmp_path, "a", common))
        a_dir = a.data_dir
        b = stack.enter_context(node(tmp_path, "b", common))
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        other = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        try:
            at_a, at_b = await signed_in(http, a), await signed_in(other, b)

            # 1. A caller on A, watched through B; an officer link opened through B.
            first, token = await at_a.create_session("07700 900123", "CAD-15-1")
            caller, _ = await caller_through(http, a.url, token, clip)
            viewer = await frames_through(viewer_answerer(at_b, first))
            share = await at_b.call("POST", f"/api/sessions/{first}/shares", {"kind": "link"})
            officer_token = share["link"].rsplit("/o/", 1)[1]
            officer = await frames_through(officer_answerer(other, b.url, officer_token))
            assert not (spool / "b" / first).exists()  # B recorded nothing
            # ... and ended through B, it ends on A.
            ended = await at_b.call("POST", f"/api/sessions/{first}/end")
            assert ended["state"] == "ended"
            assert (await at_a.call("GET", f"/api/sessions/{first}"))["state"] == "ended"
            assert "ended" in events_of(spool / "a", first)
            for closing in (viewer, officer, caller):
                await closing.close()

            # 2. A drains (SIGTERM): its live session is handed to B, and A stops. (Once
            # both heartbeats say both are idle, placement breaks the tie by name: A.)
            await asyncio.sleep(LEASE_S / 3 + 0.5)
            second, token = await at_a.create_session("07700 900124", "CAD-15-2")
            caller, _ = await caller_through(http, a.url, token, clip)
            await asyncio.sleep(1.0)
            os.kill(a.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while Path(f"/proc/{a.pid}/cmdline").read_bytes():  # empty once it has exited
                assert time.monotonic() < deadline, "A did not stop after its drain"
                await asyncio.sleep(0.2)
            await caller.close()  # A hung up after the drain deadline: the page offers again
            caller, took = await caller_through(other, b.url, token, clip)
            print(f"drain: caller resumed on B in {took:.1f} s")
            viewer = await frames_through(viewer_answerer(at_b, second))
            assert "reconnecting" in events_of(spool / "a", second)  # A signed its part, let go
            assert "reconnecting" in events_of(spool / "b", second)  # B took it over, gap recorded
            assert moves(spool / "b", second) == [("a", "drain")]  # the same bundle, continued
            await viewer.close()

            # 3. A back; B dies (SIGKILL) mid-session: the caller resumes on A within 10 s.
            again = common | {
                "SCENELINK_NODE_ID": "a",
                "SCENELINK_NODE_NAME": "a",
                "SCENELINK_DATA_DIR": str(a.data_dir),
            }
            a = stack.enter_context(node(tmp_path, "a-again", again))
            at_a = await signed_in(http, a)
            viewer = await frames_through(viewer_answerer(at_a, second))  # through A, to B
            os.kill(b.pid, signal.SIGKILL)
            await caller.close()
            caller, took = await caller_through(http, a.url, token, clip)
            print(f"SIGKILL: caller resumed on A in {took:.1f} s")
            await viewer.close()
            viewer = await frames_through(viewer_answerer(at_a, second))
            assert (
                events_of(spool / "a", second).count("reconnecting") == 2
            )  # drained, then taken over
            assert moves(spool / "a", second) == [("b", "failover")]
            ended = await at_a.call("POST", f"/api/sessions/{second}/end")
            assert ended["state"] == "ended"
            await viewer.close()
            await caller.close()
            # One session in the store: A's part, B's (B was killed: A rescued it from the
            # shared spool, 'interrupted'), A's again, once A's spool has uploaded the end.
            deadline = time.monotonic() + 30
            while True:
                verified = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "signalling.cli.main", "verify", second],
                    env=os.environ | common | {"SCENELINK_DATA_DIR": str(a_dir)},
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if "(open)" not in verified.stdout or time.monotonic() > deadline:
                    break
                await asyncio.sleep(2)
            print(verified.stdout[-3000:], verified.stderr[-2000:])
            assert verified.returncode == 0, verified.stderr[-2000:]
            status = verified.stdout.split("(", 1)[1].split(")", 1)[0]
            assert status in ("closed", "interrupted") and "nodes: a, b" in verified.stdout
            assert "before media-a-002.mkv (node a)" in verified.stdout  # the failover's gap
        finally:
            await http.close()
            await other.close()
