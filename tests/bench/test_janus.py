"""The Janus peer of the benchmark: its generated configuration, the VideoRoom messages, the
.mjr count, and (Janus installed) one caller and one viewer through Janus on loopback."""

from __future__ import annotations

import functools
import os
import struct
from pathlib import Path

import pytest
from aiortc import RTCSessionDescription

from bench import janus
from bench.media import Row, print_peer, server
from bench.report import CallerStats, LoadReport
from bench.spread import Plan, spread_load

INSTALLED = janus.janus_binary() is not None
NOT_INSTALLED = f"janus is not installed ({janus.INSTALL_HINT}; .ci/dev test installs it)"


def test_jcfg_writes_libconfig_sections() -> None:
    text = janus.jcfg({"general": {"port": 8088, "ip": "127.0.0.1", "http": True, "x": False}})
    assert text == 'general: {\n\tport = 8088\n\tip = "127.0.0.1"\n\thttp = true\n\tx = false\n}\n'


def test_config_loads_only_the_videoroom_and_http_on_loopback(tmp_path: Path) -> None:
    modules = tmp_path / "lib"
    for kind, name in (("plugins", janus.PLUGIN), ("transports", janus.TRANSPORT)):
        (modules / kind).mkdir(parents=True)
        (modules / kind / name).write_bytes(b"")
    folder = tmp_path / "conf"
    main = janus.write_config(folder, 18088, modules, "192.0.2.7")
    assert main == folder / "janus.jcfg"
    assert [p.name for p in (folder / "plugins").iterdir()] == [janus.PLUGIN]
    assert [p.name for p in (folder / "transports").iterdir()] == [janus.TRANSPORT]
    assert (folder / "plugins" / janus.PLUGIN).resolve() == modules / "plugins" / janus.PLUGIN
    text = main.read_text()
    assert f'plugins_folder = "{folder / "plugins"}"' in text
    assert 'ice_enforce_list = "192.0.2.7"' in text and "stun" not in text and "nat_1_1" not in text
    http = (folder / "janus.transport.http.jcfg").read_text()
    assert "port = 18088" in http and 'ip = "127.0.0.1"' in http
    assert "admin_http = false" in http and "https = false" in http


@pytest.mark.skipif(not INSTALLED, reason=NOT_INSTALLED)
def test_command_names_the_generated_configs_folder(tmp_path: Path) -> None:
    command = janus.janus_command(tmp_path / "janus.jcfg")
    assert command[1:] == [
        "--config",
        str(tmp_path / "janus.jcfg"),
        "--configs-folder",
        str(tmp_path),
        "-o",
    ]


def test_videoroom_messages() -> None:
    assert janus.create_room(1001, Path("/r"), "H264") == {
        "request": "create",
        "room": 1001,
        "publishers": 1,
        "record": True,
        "rec_dir": "/r",
        "videocodec": "h264",
        "audiocodec": "opus",
        "bitrate": 0,
    }
    offer = RTCSessionDescription("v=0\r\n", "offer")
    assert janus.message(janus.publish(1001, "caller"), offer) == {
        "janus": "message",
        "body": {
            "request": "joinandconfigure",
            "room": 1001,
            "ptype": "publisher",
            "display": "caller",
        },
        "jsep": {"type": "offer", "sdp": "v=0\r\n"},
    }
    assert janus.message(janus.subscribe(1001, 77)) == {
        "janus": "message",
        "body": {"request": "join", "room": 1001, "ptype": "subscriber", "streams": [{"feed": 77}]},
    }
    assert janus.START == {"request": "start"}


def test_plugin_errors_raise() -> None:
    ok = {"janus": "success", "plugindata": {"data": {"videoroom": "created", "room": 5}}}
    assert janus.plugin_data(ok) == {"videoroom": "created", "room": 5}
    assert janus.plugin_data({"janus": "ack"}) == {}
    with pytest.raises(janus.JanusError, match="428: No such feed"):
        janus.plugin_data({"plugindata": {"data": {"error_code": 428, "error": "No such feed"}}})
    with pytest.raises(janus.JanusError, match="458"):
        janus.plugin_data({"janus": "error", "error": {"code": 458, "reason": "No such session"}})


def mjr(kind: str, stamps: list[int], tail: bytes = b"") -> bytes:
    info = b'{"t":"%s","c":"x","s":1,"u":2}' % kind.encode()
    out = janus.MJR_MAGIC + struct.pack(">H", len(info)) + info
    for i, stamp in enumerate(stamps):
        rtp = struct.pack(">BBHII", 0x80, 96, i, stamp, 1) + b"payload"
        out += janus.MJR_FRAME.pack(b"MEET", i, len(rtp)) + rtp
    return out + tail


def test_mjr_frames_are_distinct_rtp_timestamps(tmp_path: Path) -> None:
    video = tmp_path / "videoroom-1000-user-1-2-video-0.mjr"
    video.write_bytes(mjr("v", [3000, 3000, 3000, 6000, 9000, 9000], tail=b"MEET\x00\x00"))
    assert janus.read_mjr(video) == janus.Recording("video", 6, 3)  # a cut-off packet ignored
    (tmp_path / "videoroom-1000-user-1-2-audio-1.mjr").write_bytes(mjr("a", [960, 1920]))
    (tmp_path / "videoroom-1001-user-3-4-video-0.mjr").write_bytes(mjr("v", [1]))
    (tmp_path / "videoroom-1000-user-1-2-data-2.mjr").write_bytes(mjr("d", [5]))
    assert janus.recorded_frames(tmp_path) == {
        1000: {"video": 3, "audio": 2},
        1001: {"video": 1, "audio": 0},
    }
    report = LoadReport(
        [CallerStats("room-1000", video_sent=5), CallerStats("room-1002", 4)], 1, ""
    )
    assert janus.count_recorded(report, tmp_path) == {"video": 4, "audio": 2}
    assert [c.recorder_missed for c in report.callers] == [2, 4]  # room 1002 recorded nothing
    (tmp_path / "bad.mjr").write_bytes(b"MEETECHO")
    with pytest.raises(ValueError, match="not a Janus MJR00002"):
        janus.read_mjr(tmp_path / "bad.mjr")


def row(path: str, callers: int, viewers: int, cpu: float, p95: float, rss: float) -> Row:
    lost = dict.fromkeys(("caller_to_server", "server_to_viewers", "server_to_recording"), 0)
    return Row(path, callers, viewers, cpu, 20.0, rss, 1.0, p95, 0, 0, None, lost, None)


def test_the_ratio_is_taken_per_round_from_that_rounds_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [row("direct", 1, 1, 0, 3.0, 0)]
    for scale in (1.0, 2.0):  # two rounds, A/B/A/B
        for callers, viewers, cpu in ((1, 0, 4.0), (1, 1, 5.0), (1, 3, 7.0), (10, 2, 40.0)):
            rows.append(row("scenelink", callers, viewers, cpu * scale, 8.0, 50.0))
            rows.append(row("janus", callers, viewers, cpu / 2, 4.0, 30.0))
    out = print_peer(rows, "janus", rounds=2)
    assert out["per caller (1x0)"] == [(4.0, 2.0, 2.0), (8.0, 2.0, 4.0)]
    assert out["per extra viewer"] == [(1.0, 0.5, 2.0), (2.0, 0.5, 4.0)]
    assert out["per session, big"] == [(4.0, 2.0, 2.0), (8.0, 2.0, 4.0)]
    assert out["added p95 ms, big"] == [(5.0, 1.0, 5.0)] * 2
    assert out["RSS MB per session, big"] == [(3.0, 1.0, 3.0)] * 2
    text = capsys.readouterr().out
    assert "2 round(s)" in text and "big = 10x2" in text
    assert "per caller (1x0)" in text and "4.00-8.00" in text and "2.00-4.00" in text


@pytest.mark.skipif(not INSTALLED, reason=NOT_INSTALLED)
def test_one_caller_and_viewer_through_janus(tmp_path: Path) -> None:
    cache = Path(os.environ.get("SCENELINK_TEST_CLIP_CACHE", tmp_path / "clips"))
    data = tmp_path / "janus"
    marks: list[str] = []
    with server("janus", data, "H264") as (url, _):
        plan = Plan(url, "", "", 1, 1, 3.0, "H264", cache)
        run = functools.partial(janus.run_janus_load, rec_dir=str(data))
        report = spread_load(run, plan, 1, marks.append)
    assert marks == ["start", "stop"] and report.errors == []
    caller = report.callers[0]
    viewer = caller.viewers[0]
    assert caller.video_sent >= 60
    # Relayed untouched: the viewer's frames match the caller's by their bytes.
    assert viewer.video >= caller.video_sent - 45 and viewer.unmatched == 0
    assert viewer.audio >= 50 and viewer.latencies
    recorded = janus.recorded_frames(data)
    assert list(recorded) == [janus.FIRST_ROOM]
    assert recorded[janus.FIRST_ROOM]["video"] >= caller.video_sent - 10
    assert recorded[janus.FIRST_ROOM]["audio"] >= 100
    assert janus.count_recorded(report, data) == recorded[janus.FIRST_ROOM]
    assert caller.recorder_missed == caller.video_sent - recorded[janus.FIRST_ROOM]["video"]
