"""Smoke test: the load generator against a real server process (1 caller, 1 viewer)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from bench.load import count_gaps, load_clip, recorded_frames, run_load
from tests.harness import free_port, running

ACCOUNT = [{"username": "bench", "password": "bench-pass", "roles": ["call_handler"]}]


def test_count_gaps() -> None:
    assert count_gaps([0, 1, 2, 3], 10) == 0
    assert count_gaps([8, 9, 0, 1], 10) == 0
    assert count_gaps([1, 2, 5, 6], 10) == 2
    assert count_gaps([9, 2], 10) == 2


@pytest.mark.parametrize("codec", ["H264"])
async def test_load_generator_smoke(codec: str, tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = os.environ | {
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_DATA_DIR": str(data),
        "SCENELINK_OPERATORS": json.dumps(ACCOUNT),
    }
    env.pop("REDIS_URL", None)
    cache = Path(os.environ.get("SCENELINK_TEST_CLIP_CACHE", tmp_path / "clips"))
    command = [sys.executable, "-m", "signalling.cli", "serve"]
    with running(command, port, tmp_path / "server.log", env=env):
        report = await run_load(
            f"http://127.0.0.1:{port}",
            "bench",
            "bench-pass",
            callers=1,
            viewers=1,
            seconds=3.0,
            codec=codec,
            cache_dir=cache,
        )
    summary = report.summary()
    assert summary["errors"] == []
    caller = report.callers[0]
    viewer = caller.viewers[0]
    assert caller.video_sent >= 60 and caller.audio_sent >= 100
    assert caller.fixes_sent >= 2
    # Relayed: the viewer got most of what was sent, matched byte for byte, in order.
    assert viewer.video >= caller.video_sent - 30 and viewer.unmatched == 0
    assert viewer.video <= caller.video_sent
    assert viewer.audio >= 50
    assert summary["viewer_video_frames_lost"] == 0
    assert viewer.join_to_first_keyframe is not None and viewer.join_to_first_keyframe < 1.0
    assert summary["latency_ms_p50"] is not None and summary["latency_ms_p50"] > 0
    # Recorded (the server closed the part when the session ended): every frame sent.
    recorded = recorded_frames(data / "evidence", report, load_clip(codec, cache))
    assert recorded["unmatched"] == 0 and recorded["lost"] == 0
    assert caller.video_sent - 3 <= recorded["video"] <= caller.video_sent
    fixes = (data / "evidence" / caller.session_id / "location.jsonl").read_text().splitlines()
    assert len(fixes) >= 2
