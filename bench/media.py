"""Media-plane benchmark: starts the server, runs bench.load scenarios, prints one table.

    python -m bench.media            # full run (a few minutes)
    python -m bench.media --quick    # short run

Server CPU comes from /proc/<pid>/stat (utime+stime) between the load's steady-state marks,
as % of one core; memory is the server's RSS. The same load runs against aiortc's stock path
(bench.stock: decode, MediaRelay, one encoder per viewer, MediaRecorder) for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import DEFAULT_CACHE, load_clip, recorded_frames, run_load

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ACCOUNT = [{"username": "bench", "password": "bench-pass", "roles": ["call_handler"]}]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(kind: str, data: Path, codec: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = os.environ | {
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_DATA_DIR": str(data),
        "SCENELINK_OPERATORS": json.dumps(ACCOUNT),
        "SCENELINK_LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    if kind == "scenelink":
        command = [sys.executable, "-m", "signalling.cli", "--log-level", "WARNING", "serve"]
    else:
        command = [sys.executable, "-m", "bench.stock", "--port", str(port)]
        command += ["--data-dir", str(data), "--codec", codec]
    log = (data.parent / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} server did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@dataclass
class Row:
    path: str
    callers: int
    viewers: int
    cpu_pct: float
    rss_idle_mb: float
    rss_mb: float
    p50: float | None
    p95: float | None
    sent: int
    video_sent: int
    relayed: int
    recorded: int
    lost: int
    first_key_s: float | None


def scenario(kind: str, callers: int, viewers: int, seconds: float, codec: str, cache: Path) -> Row:
    with tempfile.TemporaryDirectory(prefix="scenelink-bench-") as tmp:
        data = Path(tmp) / "data"
        with server(kind, data, codec) as (url, process):
            time.sleep(0.5)
            idle = rss_mb(process.pid)
            marks: dict[str, float] = {}
            rss: list[float] = []

            def on_steady(mark: str) -> None:
                marks[mark] = cpu_seconds(process.pid)
                marks[mark + "_t"] = time.monotonic()
                rss.append(rss_mb(process.pid))

            report = asyncio.run(
                run_load(
                    url,
                    "bench",
                    "bench-pass",
                    callers=callers,
                    viewers=viewers,
                    seconds=seconds,
                    codec=codec,
                    cache_dir=cache,
                    on_steady=on_steady,
                    warmup=2.0,
                )
            )
            time.sleep(1.0)
        recorded = recorded_frames(data / "evidence", report, load_clip(codec, cache))
    cpu = 100 * (marks["stop"] - marks["start"]) / (marks["stop_t"] - marks["start_t"])
    s = report.summary()
    lost = s["viewer_video_frames_lost"] + (recorded["lost"] if kind == "scenelink" else 0)
    return Row(
        kind,
        callers,
        viewers,
        cpu,
        idle,
        max(rss),
        s["latency_ms_p50"],
        s["latency_ms_p95"],
        s["frames_sent"],
        s["video_frames_sent"],
        s["frames_relayed"],
        recorded["video"] + recorded["audio"],
        lost,
        s["max_join_to_first_keyframe_s"],
    )


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    import aiortc
    import av

    return (
        f"{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
        f"Python {platform.python_version()}, aiortc {aiortc.__version__}, PyAV {av.__version__}"
    )


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[Row], codec: str, seconds: float) -> dict[str, Any]:
    head = (
        f"{'path':10} {'callers':>7} {'viewers':>7} {'cpu %core':>9} {'rss MB':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'sent':>7} {'relayed':>8} {'recorded':>8} {'lost':>5} "
        f"{'1st key s':>9}"
    )
    print(f"SceneLink media benchmark: {codec} 720p ~1.5 Mbit/s + Opus, {seconds:g} s steady")
    print(f"machine: {machine()}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.path:10} {r.callers:>7} {r.viewers:>7} {r.cpu_pct:>9.1f} {r.rss_mb:>7.0f} "
            f"{fmt(r.p50):>7} {fmt(r.p95):>7} {r.sent:>7} {r.relayed:>8} {r.recorded:>8} "
            f"{r.lost:>5} {fmt(r.first_key_s, '.2f'):>9}"
        )

    def find(path: str, c: int, v: int) -> Row | None:
        return next((r for r in rows if (r.path, r.callers, r.viewers) == (path, c, v)), None)

    derived: dict[str, Any] = {}
    base, three = find("scenelink", 1, 0), find("scenelink", 1, 3)
    if base and three:
        derived["cpu_per_caller_pct"] = base.cpu_pct
        derived["cpu_per_extra_viewer_pct"] = (three.cpu_pct - base.cpu_pct) / 3
    big = max((r for r in rows if r.path == "scenelink"), key=lambda r: r.callers)
    derived["rss_per_session_mb"] = (big.rss_mb - big.rss_idle_mb) / big.callers
    derived["lost_at_max_load"] = (big.callers, big.viewers, big.lost)
    stock = find("stock", 1, 3)
    if three and stock:
        derived["stock_1x3_cpu_pct"] = stock.cpu_pct
        derived["stock_over_scenelink_1x3"] = stock.cpu_pct / max(three.cpu_pct, 0.01)
    print()
    print("per caller (ingest+record, 1x0): ", fmt(derived.get("cpu_per_caller_pct")), "% core")
    print(
        "per extra viewer ((1x3-1x0)/3):  ", fmt(derived.get("cpu_per_extra_viewer_pct")), "% core"
    )
    print(
        "memory per session (RSS):        ",
        fmt(derived["rss_per_session_mb"]),
        "MB",
        f"({big.callers}x{big.viewers})",
    )
    print(
        "stock / scenelink CPU, 1 caller x 3 viewers:",
        fmt(derived.get("stock_over_scenelink_1x3")),
        "x",
    )
    print(f"frames lost at {big.callers}x{big.viewers} (viewers + recording): {big.lost}")
    print("latency = viewer receive - caller send, measured in the load process: it includes the")
    print("loopback network and both aiortc jitter buffers (each waits for the next frame's first")
    print("packet, about one frame interval, before it releases a frame). The load generator")
    print("runs on the same machine and competes for its cores.")
    return derived


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.media", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, small scenarios")
    parser.add_argument("--codec", choices=["H264", "VP8"], default="H264")
    parser.add_argument("--seconds", type=float, help="steady-state seconds per scenario")
    parser.add_argument("--callers", type=int, help="callers in the big scenario (2 viewers each)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--no-stock", action="store_true", help="skip aiortc's stock path")
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    big = args.callers or (3 if args.quick else 20)
    load_clip(args.codec, args.cache)  # encode once before any timing
    plan = [("scenelink", 1, 0), ("scenelink", 1, 1), ("scenelink", 1, 3), ("scenelink", big, 2)]
    if not args.no_stock:
        plan += [("stock", 1, 0), ("stock", 1, 3)]
    rows = []
    for kind, callers, viewers in plan:
        print(f"running {kind} {callers}x{viewers} ...", file=sys.stderr, flush=True)
        rows.append(scenario(kind, callers, viewers, seconds, args.codec, args.cache))
    print_table(rows, args.codec, seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
