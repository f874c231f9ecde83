"""/metrics: refused without the token, and after a real session the frames per stage, the
viewers, the rejected fixes and the process's own figures, with totals that never go back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiortc import RTCSessionDescription
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip, SyntheticCaller
from signalling.web.appkeys import SERVICE
from tests.client import Client
from tests.signalling.web.test_evidence_record import HEADERS, call, serve
from tests.viewer import Viewer

TOKEN = "scrape-me"
# (metric name, labels as sorted (name, value) pairs) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: Client) -> Samples:
    answer = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(await answer.text())
        for s in family.samples
    }


def video(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"kind": "video", **labels}.items()))


async def test_metrics_need_the_configured_token(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    off = await serve(aiohttp_client, tmp_path / "off")
    answer = await off.get("/metrics", headers={"Authorization": "Bearer anything"})
    assert answer.status == 403
    assert await answer.json() == {"error": "metrics are off: set SCENELINK_METRICS_TOKEN"}
    on = await serve(aiohttp_client, tmp_path / "on", metrics_token=TOKEN)
    on.session.cookie_jar.clear()  # a console sign-in is neither needed nor enough
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = await on.get("/metrics", headers=headers)
        assert refused.status == 401 and "error" in await refused.json()
    assert ("process_cpu_seconds_total", ()) in await scrape(on)


async def test_metrics_count_a_session_by_stage(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path, metrics_token=TOKEN)
    app = client.app
    assert app is not None
    caller, viewer = SyntheticCaller(clips["H264"]), Viewer()
    try:
        session_id = await call(client, caller)

        async def answer(offer: RTCSessionDescription) -> RTCSessionDescription:
            body = {"sdp": offer.sdp, "type": offer.type}
            path = f"/api/sessions/{session_id}/viewers"
            answer = await (await client.post(path, json=body, headers=HEADERS)).json()
            return RTCSessionDescription(answer["sdp"], answer["type"])

        await viewer.join(answer)
        deadline = time.monotonic() + 20
        while True:
            live = await scrape(client)
            if live[video("scenelink_frames_recorded_total")] and viewer.frames["video"]:
                break
            assert time.monotonic() < deadline, live
            await asyncio.sleep(0.2)
        for _ in range(3):
            await app[SERVICE].handle_caller_message(session_id, "not json")
        ended = await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
        assert ended.status == 200
    finally:
        await viewer.close()
        await caller.close()

    assert live[("scenelink_media_sessions", ())] == 1
    assert live[("scenelink_viewers", ())] == 1
    received = live[video("scenelink_frames_received_total")]
    assert received > 0
    # The recorder and the viewer each take frames from the relay.
    assert (
        live[video("scenelink_frames_relayed_total")]
        > live[video("scenelink_frames_recorded_total")]
    )
    assert live[video("scenelink_frames_recorded_total")] <= received
    assert video("scenelink_frames_dropped_total", stage="relay") in live
    assert live[("scenelink_event_loop_lag_seconds_count", ())] > 0
    assert ("scenelink_upload_backlog_objects", ()) in live
    assert live[("scenelink_accepting_sessions", ())] == 1

    after = await scrape(client)
    assert after[("scenelink_media_sessions", ())] == 0
    assert after[("scenelink_viewers", ())] == 0
    assert after[("scenelink_fixes_rejected_total", ())] == 3
    # The ended session's frames stay counted: a Prometheus counter never goes back.
    for stage in ("received", "relayed", "recorded"):
        name = f"scenelink_frames_{stage}_total"
        assert after[video(name)] >= live[video(name)] > 0, stage
