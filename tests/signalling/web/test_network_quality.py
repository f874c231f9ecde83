"""A live caller's network quality reaches the console's view of the session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip, SyntheticCaller
from tests.signalling.web.test_evidence_record import call, serve, wait_for


def measured(session: dict[str, Any]) -> bool:
    network = session.get("network")
    return network is not None and (network["fps"] or 0) > 0


async def test_a_live_session_shows_its_callers_network(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    clip = clips["VP8"]
    caller = SyntheticCaller(clip)
    try:
        session_id = await call(client, caller)
        network = (await wait_for(client, session_id, measured))["network"]
    finally:
        await caller.close()
    assert 0 < network["fps"] <= clip.fps * 2, network
    assert (network["width"], network["height"]) == (clip.width, clip.height)
    assert network["bitrate_kbps"] > 0 and 0 <= network["loss_pct"] < 5, network
    assert network["rtt_ms"] is not None and 0 <= network["rtt_ms"] < 1000, network
    assert network["measured_at"]
    ended = await client.post(
        f"/api/sessions/{session_id}/end", headers={"X-Requested-With": "scenelink"}
    )
    assert (await ended.json())["network"] is None
