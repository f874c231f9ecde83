"""The load generator: loss attribution, the direct baseline, and a smoke run against a real
server process with callers spread over two load processes."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

from bench.load import load_clip, run_direct, run_load
from bench.losses import (
    align_loops,
    number_frames,
    recorded_frames,
    split_at_long_gaps,
)
from bench.report import CallerStats, LoadReport, ViewerStats, stage_losses
from bench.spread import Plan, merge, shares, spread_load
from tests.harness import free_port, running

ACCOUNT = [{"username": "bench", "password": "bench-pass", "roles": ["call_handler"]}]


def test_number_frames_follows_the_looping_clip() -> None:
    # A 10-frame clip: send number k shows clip frame (k - 1) % 10.
    assert number_frames([3, 4, 5], 10, anchor=24) == [24, 25, 26]
    assert number_frames([8, 9, 0, 1], 10, anchor=9) == [9, 10, 11, 12]
    assert number_frames([1, 2, 5, 6], 10, anchor=31) == [32, 33, 36, 37]
    assert number_frames([9, 2], 10, anchor=1) == [10, 13]


def test_recorded_numbers_move_by_whole_loops_to_match_the_viewers() -> None:
    # Placed a loop late (the first frame arrived long after it was sent): moved back.
    assert align_loops([25, 26, 28], {15, 16, 17, 18}, 10) == [15, 16, 18]
    assert align_loops([5, 6], {25, 26, 27}, 10) == [25, 26]
    assert align_loops([5, 6], {5, 16}, 10) == [5, 6]  # ties keep the arrival-time placement
    assert align_loops([5, 6], set(), 10) == [5, 6]  # no viewers: nothing to align with
    assert align_loops([5, 16], {6}, 10) == [5, 16]  # never before send number 1


def test_runs_are_split_where_the_gap_is_over_half_a_loop() -> None:
    assert split_at_long_gaps([1, 2, 7, 8, 14, 15], 10) == [[1, 2, 7, 8], [14, 15]]
    assert split_at_long_gaps([], 10) == []


def caller_with(viewers: list[list[int]], recorded: list[int] | None) -> CallerStats:
    stats = CallerStats("s", video_sent=20, recorded=recorded)
    stats.viewers = [ViewerStats(indices=v) for v in viewers]
    return stats


def test_losses_are_placed_at_the_stage_that_lost_them() -> None:
    recording = [1, 2, 3, 5, 6, 7, 8, 9, 10]  # 4: missing everywhere from here on
    first = [3, 5, 6, 8, 9, 10]  # joined at 3; 7 lost on the way to it
    second = [2, 3, 5, 6, 7, 8, 9]  # 10 lost on the way to it
    stats = caller_with([first, second], recording)
    assert stage_losses(stats) == {
        "caller_to_server": 1,
        "server_to_viewers": 2,
        "server_to_recording": 0,
    }
    stats.recorded = [1, 2, 3, 5, 6, 8, 9, 10]  # 7 also missing from the recording
    assert stage_losses(stats)["server_to_recording"] == 1
    stats.recorder_missed = 0  # the recorder's own count wins over numbering by bytes
    assert stage_losses(stats)["server_to_recording"] == 0
    # Until the recording is read, only viewers count; a silent viewer lost everything.
    assert stage_losses(caller_with([[4, 5, 6], []], None)) == {
        "caller_to_server": 0,
        "server_to_viewers": 3,
        "server_to_recording": 0,
    }


def test_reports_travel_between_processes_as_json() -> None:
    assert shares(5, 2) == [(0, 3), (3, 2)]
    assert shares(1, 4) == [(0, 1)]
    report = LoadReport([caller_with([[1, 2]], [1, 2])], 5.0, "H264", ["oops"])
    report.callers[0].viewers[0].latencies = [0.004]
    plan = Plan("http://x", "u", "p", 2, 1, 5.0, "H264", Path("."))
    merged = merge([dataclasses.asdict(report), {"error": "callers 1..1: boom"}], plan)
    assert merged.callers == report.callers
    assert merged.errors == ["oops", "callers 1..1: boom"]


async def test_direct_baseline_has_no_server(tmp_path: Path) -> None:
    cache = Path(os.environ.get("SCENELINK_TEST_CLIP_CACHE", tmp_path / "clips"))
    report = await run_direct(seconds=2.0, cache_dir=cache)
    viewer = report.callers[0].viewers[0]
    assert viewer.video >= 30 and viewer.unmatched == 0 and viewer.latencies
    assert report.stage_losses()["server_to_viewers"] == 0


@pytest.mark.parametrize("codec", ["H264"])
def test_load_generator_smoke(codec: str, tmp_path: Path) -> None:
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
    load_clip(codec, cache)
    command = [sys.executable, "-m", "signalling.cli.main", "serve"]
    marks: list[str] = []
    url = f"http://127.0.0.1:{port}"
    with running(command, port, tmp_path / "server.log", env=env):
        plan = Plan(url, "bench", "bench-pass", 2, 1, 3.0, codec, cache)
        report = spread_load(run_load, plan, 2, marks.append)
    assert marks == ["start", "stop"]
    summary = report.summary()
    assert summary["errors"] == []
    assert len(report.callers) == 2 and len({c.session_id for c in report.callers}) == 2
    for caller in report.callers:
        viewer = caller.viewers[0]
        assert caller.video_sent >= 60 and caller.audio_sent >= 100
        assert caller.fixes_sent >= 2
        # Relayed: the viewer got most of what was sent, matched byte for byte.
        assert viewer.video >= caller.video_sent - 45 and viewer.unmatched == 0
        assert viewer.video <= caller.video_sent
        assert viewer.audio >= 50
        assert viewer.join_to_first_keyframe is not None and viewer.join_to_first_keyframe < 1.5
    assert summary["latency_ms_p50"] is not None and summary["latency_ms_p50"] > 0
    # Recorded (the server closed the parts when the sessions ended): every frame sent.
    recorded = recorded_frames(data / "evidence", report, load_clip(codec, cache))
    assert recorded["unmatched"] == 0 and recorded["lost"] == 0
    for caller in report.callers:
        assert caller.recorded == list(range(1, caller.video_sent + 1))
        assert caller.recorder_missed == 0  # and by the recorder's own count
        fixes = (data / "evidence" / caller.session_id / "location.jsonl").read_text()
        assert len(fixes.splitlines()) >= 2
    assert report.stage_losses() == dict.fromkeys(
        ("caller_to_server", "server_to_viewers", "server_to_recording"), 0
    )
