"""Media-plane benchmark: starts the server, runs bench.load scenarios, prints one table.

    python -m bench.media            # full run (a few minutes)
    python -m bench.media --quick    # short run
    python -m bench.media --workers 2    # SceneLink as 2 worker processes (and a Redis)

Server CPU comes from /proc/<pid>/stat (utime+stime) between the load's steady-state marks,
as % of one core; memory is the server's RSS. The same load runs against aiortc's stock path
(bench.stock: decode, MediaRelay, one encoder per viewer, MediaRecorder) for comparison, and
once with no server at all (bench.load.run_direct: the caller straight to a viewer), so that
latency through the server minus latency without it is what the server adds. With
``--peer janus`` (the default where Janus is installed) each SceneLink scenario is followed by
the same one against Janus (bench.janus), interleaved, and the ratios are printed.

Each SceneLink scenario runs twice in a row: ``scenelink`` with the C per-packet path
(streamserver.native._native) and ``python`` with SCENELINK_NO_EXTENSIONS=1, the pure-Python path;
the first frames each recorded are compared byte for byte, place by place in the clip (they
must be identical).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import uvloop

from recorder.library import video_packets

from . import janus
from .cluster import merged_evidence, redis, wait_for_workers, wait_listening, worker_sessions
from .load import DEFAULT_CACHE, load_clip, run_direct, run_load
from .losses import frame_key, recorded_frames
from .report import LoadReport
from .spread import Plan, spread_load
from .synthetic import Clip

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
STOP_TIMEOUT_S = 30
ACCOUNT = [{"username": "bench", "password": "bench-pass", "roles": ["call_handler"]}]
SAMPLE_FRAMES = 60  # recorded video frames compared between the C and the Python path


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
def server(
    kind: str, data: Path, codec: str, cluster: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = os.environ | {
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_DATA_DIR": str(data),
        "SCENELINK_OPERATORS": json.dumps(ACCOUNT),
        "SCENELINK_LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    env.update(cluster or {})  # --workers: their Redis and count
    env.pop("SCENELINK_NO_EXTENSIONS", None)
    if kind == "python":  # SceneLink on its pure-Python per-packet path
        env["SCENELINK_NO_EXTENSIONS"] = "1"
    if kind in ("scenelink", "python"):
        command = [sys.executable, "-m", "signalling.cli.main", "--log-level", "WARNING", "serve"]
    elif kind == "janus":
        data.mkdir(parents=True)
        config = janus.write_config(data, port, janus.module_folder(), janus.host_address())
        command = janus.janus_command(config)
    else:
        command = [sys.executable, "-m", "bench.stock", "--port", str(port)]
        command += ["--data-dir", str(data), "--codec", codec]
    log = (data.parent / f"{kind}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        timeout_s = 60 if cluster else 20  # N workers start together
        wait_listening(process, port, timeout_s, f"{kind} server")
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            print(
                f"{kind} server still running {STOP_TIMEOUT_S} s after SIGTERM: killed "
                "(its last recording parts may be unfinished)",
                file=sys.stderr,
            )
            process.kill()
            process.wait()
        log.close()


@dataclass
class Row:
    path: str
    callers: int
    viewers: int
    cpu_pct: float | None
    rss_idle_mb: float | None
    rss_mb: float | None
    p50: float | None
    p95: float | None
    sent: int
    relayed: int
    recorded: int | None
    lost: dict[str, int]
    first_key_s: float | None
    per_worker: list[tuple[float, int]] = field(default_factory=list)  # % core, sessions
    # The first recorded video frames by their place in the clip, as recorded; and how many of
    # them are no frame of the clip at all.
    sample: dict[int, bytes] = field(default_factory=dict)
    stray: int = 0


def to_row(
    path: str,
    report: LoadReport,
    recorded: int | None = None,
    cpu: float | None = None,
    rss: tuple[float, float] | None = None,
) -> Row:
    s = report.summary()
    return Row(
        path,
        len(report.callers),
        s["viewers_per_caller"],
        cpu,
        rss[0] if rss else None,
        rss[1] if rss else None,
        s["latency_ms_p50"],
        s["latency_ms_p95"],
        s["frames_sent"],
        s["frames_relayed"],
        recorded,
        s["video_frames_lost"],
        s["max_join_to_first_keyframe_s"],
    )


def scenario(
    kind: str,
    callers: int,
    viewers: int,
    seconds: float,
    codec: str,
    cache: Path,
    processes: int,
    workers: int = 1,
) -> Row:
    many = kind == "scenelink" and workers > 1
    with tempfile.TemporaryDirectory(prefix="scenelink-bench-") as tmp:
        data = Path(tmp) / "data"
        with (
            redis(Path(tmp) / "redis") if many else nullcontext("") as redis_url,
            server(
                kind,
                data,
                codec,
                {"REDIS_URL": redis_url, "SCENELINK_WORKERS": str(workers)} if many else None,
            ) as (url, process),
        ):
            # The server's processes: a supervisor and its workers, or the one process.
            port = int(url.rsplit(":", 1)[1])
            pids = [process.pid, *wait_for_workers(process.pid, port, workers)] if many else []
            pids = pids or [process.pid]
            time.sleep(0.5)
            idle = sum(rss_mb(pid) for pid in pids)
            marks: dict[str, float] = {}
            rss: list[float] = []
            each: dict[str, list[float]] = {}

            def on_steady(mark: str) -> None:
                each[mark] = [cpu_seconds(pid) for pid in pids]
                marks[mark] = sum(each[mark])
                marks[mark + "_t"] = time.monotonic()
                rss.append(sum(rss_mb(pid) for pid in pids))

            plan = Plan(url, "bench", "bench-pass", callers, viewers, seconds, codec, cache, 2.0)
            runner = (
                partial(janus.run_janus_load, rec_dir=str(data)) if kind == "janus" else run_load
            )
            report = spread_load(runner, plan, processes, on_steady)
            time.sleep(1.0)
        clip = load_clip(codec, cache)
        sample: dict[int, bytes] = {}
        stray = 0
        if kind == "janus":  # frames in its .mjr files, counted (not matched by bytes)
            recorded = janus.count_recorded(report, data)
        else:  # aiortc's stock MediaRecorder transcodes: its frames cannot be matched by bytes.
            held = worker_sessions(data) if many else []
            evidence = merged_evidence(data) if many else data / "evidence"
            recorded = recorded_frames(evidence, report, clip)
            sample, stray = placed(first_recorded(evidence), clip)
    if report.errors:
        raise RuntimeError(f"{kind} {callers}x{viewers}: {report.errors}")
    if kind == "stock":
        for caller in report.callers:
            caller.recorded = None
    steady_s = marks["stop_t"] - marks["start_t"]
    cpu = 100 * (marks["stop"] - marks["start"]) / steady_s
    row = to_row(kind, report, recorded["video"] + recorded["audio"], cpu, (idle, max(rss)))
    row.sample, row.stray = sample, stray
    if many:  # each worker's CPU and the sessions placed on it (pids[0] is the supervisor)
        spent = [100 * (b - a) / steady_s for a, b in zip(*each.values(), strict=True)][1:]
        row.per_worker = list(zip(spent, held, strict=True))
    return row


def first_recorded(evidence: Path) -> list[bytes]:
    """The first SAMPLE_FRAMES video frames of the first session's first recording part."""
    parts = sorted(evidence.glob("*/media-001.mkv"))
    return video_packets(parts[0])[:SAMPLE_FRAMES] if parts else []


def placed(frames: list[bytes], clip: Clip) -> tuple[dict[int, bytes], int]:
    """Recorded frames by their place in the clip (the first time each is seen, matched blind
    to start-code length), and how many match no clip frame."""
    where = {frame_key(p.data): i for i, p in enumerate(clip.video)}
    found: dict[int, bytes] = {}
    stray = 0
    for data in frames:
        index = where.get(frame_key(data))
        if index is None:
            stray += 1
        else:
            found.setdefault(index, data)
    return found, stray


def sample_differences(native: Row, python: Row) -> tuple[int, int]:
    """(frames compared, frames that differ): the frames both paths recorded at the same place
    in the clip, byte for byte as recorded; a frame that is no clip frame differs. Frames lost
    under load in one run only are left out, instead of shifting every later comparison."""
    common = native.sample.keys() & python.sample.keys()
    stray = native.stray + python.stray
    differing = sum(native.sample[i] != python.sample[i] for i in common)
    return len(common) + stray, differing + stray


def direct(seconds: float, codec: str, cache: Path) -> Row:
    """The caller straight to a viewer: latency without the server."""
    report = uvloop.run(run_direct(seconds=seconds, codec=codec, cache_dir=cache, warmup=2.0))
    return to_row("direct", report)


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


LOST = {
    "caller_to_server": "c>srv",
    "server_to_viewers": "srv>vw",
    "server_to_recording": "srv>rec",
}


def print_table(rows: list[Row], codec: str, seconds: float) -> dict[str, Any]:
    head = (
        f"{'path':10} {'callers':>7} {'viewers':>7} {'cpu %core':>9} {'rss MB':>7} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'sent':>7} {'relayed':>8} {'recorded':>8} "
        + " ".join(f"{name:>7}" for name in LOST.values())
        + f" {'1st key s':>9}"
    )
    print(f"SceneLink media benchmark: {codec} 720p ~1.5 Mbit/s + Opus, {seconds:g} s steady")
    print(f"machine: {machine()}")
    print(
        "cpu: the server's processes. p50/p95: video latency, caller send -> viewer receive, both"
    )
    print("in one load process (packetizing, loopback, reassembly; through the server, twice).")
    print("'direct' is the same caller and viewer with no server between them. lost: video frames")
    print("missing per stage (caller->server, server->viewers, server->recording).")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.path:10} {r.callers:>7} {r.viewers:>7} {fmt(r.cpu_pct):>9} "
            f"{fmt(r.rss_mb, '.0f'):>7} {fmt(r.p50):>7} {fmt(r.p95):>7} {r.sent:>7} "
            f"{r.relayed:>8} {fmt(r.recorded, 'd'):>8} "
            + " ".join(f"{r.lost[stage]:>7}" for stage in LOST)
            + f" {fmt(r.first_key_s, '.2f'):>9}"
        )

    def find(path: str, c: int, v: int) -> Row | None:
        return next((r for r in rows if (r.path, r.callers, r.viewers) == (path, c, v)), None)

    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    derived: dict[str, Any] = {}
    base, one, three = (find("scenelink", 1, v) for v in (0, 1, 3))
    py_base, py_three = find("python", 1, 0), find("python", 1, 3)
    if py_base and py_three and py_base.cpu_pct is not None and py_three.cpu_pct is not None:
        derived["python_cpu_per_caller_pct"] = py_base.cpu_pct
        derived["python_cpu_per_extra_viewer_pct"] = (py_three.cpu_pct - py_base.cpu_pct) / 3
    compared = differing = 0
    for row in rows:
        twin = find("python", row.callers, row.viewers) if row.path == "scenelink" else None
        if twin is not None:
            n, d = sample_differences(row, twin)
            compared, differing = compared + n, differing + d
    derived["sample_frames_compared"] = compared
    derived["sample_frames_differing"] = differing
    if base and three and base.cpu_pct is not None and three.cpu_pct is not None:
        derived["cpu_per_caller_pct"] = base.cpu_pct
        derived["cpu_per_extra_viewer_pct"] = (three.cpu_pct - base.cpu_pct) / 3
    big = max((r for r in rows if r.path == "scenelink"), key=lambda r: r.callers)
    twin_big = find("python", big.callers, big.viewers)
    if big.rss_mb is not None and big.rss_idle_mb is not None:
        derived["rss_per_session_mb"] = (big.rss_mb - big.rss_idle_mb) / big.callers
    derived["lost_at_max_load"] = (big.callers, big.viewers, big.lost)
    stock = find("stock", 1, 3)
    if three and stock and stock.cpu_pct is not None and three.cpu_pct is not None:
        derived["stock_1x3_cpu_pct"] = stock.cpu_pct
        derived["stock_over_scenelink_1x3"] = stock.cpu_pct / max(three.cpu_pct, 0.01)
    baseline = find("direct", 1, 1)
    if one and baseline:
        derived["server_added_ms_p50"] = diff(one.p50, baseline.p50)
        derived["server_added_ms_p95"] = diff(one.p95, baseline.p95)
    print()
    print(
        "per caller (ingest+record, 1x0): ",
        fmt(derived.get("cpu_per_caller_pct")),
        "% core (python path:",
        fmt(derived.get("python_cpu_per_caller_pct")),
        "%)",
    )
    print(
        "per extra viewer ((1x3-1x0)/3):  ",
        fmt(derived.get("cpu_per_extra_viewer_pct")),
        "% core (python path:",
        fmt(derived.get("python_cpu_per_extra_viewer_pct")),
        "%)",
    )
    print(f"C vs Python path, first recorded video frames: {differing} of {compared} differ")
    print(
        "memory per session (RSS):        ",
        fmt(derived.get("rss_per_session_mb")),
        "MB",
        f"({big.callers}x{big.viewers})",
    )
    print(
        "stock / scenelink CPU, 1 caller x 3 viewers:",
        fmt(derived.get("stock_over_scenelink_1x3")),
        "x",
    )
    print(
        "server-added latency (scenelink 1x1 - direct): p50",
        fmt(derived.get("server_added_ms_p50")),
        "ms, p95",
        fmt(derived.get("server_added_ms_p95")),
        "ms",
    )
    lost = ", ".join(f"{LOST[k]} {v}" for k, v in big.lost.items())
    print(f"video frames lost at {big.callers}x{big.viewers}: {lost}")
    if twin_big is not None:
        lost = ", ".join(f"{LOST[k]} {v}" for k, v in twin_big.lost.items())
        print(f"  (python path: {lost})")
    for r in rows:
        if r.per_worker:  # --workers: the supervisor and its workers are the server's CPU
            loads = ", ".join(f"{c:.1f}% ({n} sessions)" for c, n in r.per_worker)
            print(f"per worker at {r.callers}x{r.viewers}: {loads}")
    print("The load processes run on the same machine as the server and compete for its cores.")
    return derived


def figures(rows: list[Row], path: str) -> dict[str, float | None]:
    """One path's comparable figures: CPU per caller (1x0), per extra viewer, per session at
    the big scenario, server-added p95 latency (minus 'direct') and RSS."""
    got = {(r.callers, r.viewers): r for r in rows if r.path == path}
    base, one, three = (got.get((1, v)) for v in (0, 1, 3))
    big = got[max(got)] if got else None
    direct = next((r for r in rows if r.path == "direct"), None)

    def cpu(r: Row | None) -> float | None:
        return None if r is None else r.cpu_pct

    def added(r: Row | None) -> float | None:
        if r is None or direct is None or r.p95 is None or direct.p95 is None:
            return None
        return r.p95 - direct.p95

    b, t, g = cpu(base), cpu(three), cpu(big)
    return {
        "per caller (1x0)": b,
        "per extra viewer": None if b is None or t is None else (t - b) / 3,
        "per session, big": None if g is None or big is None else g / big.callers,
        "added p95 ms, 1x1": added(one),
        "added p95 ms, big": added(big),
        "RSS MB idle": None if big is None else big.rss_idle_mb,
        "RSS MB per session, big": None
        if big is None or big.rss_mb is None or big.rss_idle_mb is None
        else (big.rss_mb - big.rss_idle_mb) / big.callers,
    }


def span(values: list[float | None]) -> str:
    """One figure, or the range over the rounds ("-" where one is missing)."""
    if not values or any(v is None for v in values):
        return "-"
    low, high = min(v for v in values if v is not None), max(v for v in values if v is not None)
    return f"{low:.2f}" if len(values) == 1 else f"{low:.2f}-{high:.2f}"


def print_peer(
    rows: list[Row], peer: str, rounds: int = 1
) -> dict[str, list[tuple[float | None, float | None, float | None]]]:
    """SceneLink beside the peer with the ratio, each round's figures from that round's rows
    (the rows come in rounds, each round SceneLink and the peer interleaved)."""
    direct = [r for r in rows if r.path == "direct"]
    body = [r for r in rows if r.path in ("scenelink", peer)]
    per = len(body) // rounds
    out: dict[str, list[tuple[float | None, float | None, float | None]]] = {}
    for i in range(rounds):
        chunk = direct + body[i * per : (i + 1) * per]
        ours, theirs = figures(chunk, "scenelink"), figures(chunk, peer)
        for name, a in ours.items():
            b = theirs[name]
            ratio = None if a is None or b is None or b <= 0 else a / b
            out.setdefault(name, []).append((a, b, ratio))
    big = max((r.callers for r in body), default=0)
    print()
    print(f"SceneLink / {peer}, same clients, interleaved, {rounds} round(s) (CPU in % of one")
    print(f"core; big = {big}x2; a range is the lowest-highest over the rounds):")
    print(f"{'':24} {'SceneLink':>15} {peer:>15} {'ratio':>15}")
    for name, figs in out.items():
        columns = (span([f[k] for f in figs]) for k in range(3))
        print(f"{name:24} " + " ".join(f"{c:>15}" for c in columns))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.media", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, small scenarios")
    parser.add_argument("--codec", choices=["H264", "VP8"], default="H264")
    parser.add_argument("--seconds", type=float, help="steady-state seconds per scenario")
    parser.add_argument("--callers", type=int, help="callers in the big scenario (2 viewers each)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--no-stock", action="store_true", help="skip aiortc's stock path")
    parser.add_argument(
        "--peer",
        choices=["janus", "none"],
        default="janus",
        help="a peer SFU run after each SceneLink scenario (default janus, if installed)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run the scenarios this many times (A/B/A/B...)"
    )
    parser.add_argument(
        "--no-python", action="store_true", help="skip SceneLink's pure-Python per-packet path"
    )
    parser.add_argument(
        "--processes", type=int, default=0, help="load processes (default: one per core)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="SceneLink worker processes (above 1: Redis too)"
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (5.0 if args.quick else 15.0)
    big = args.callers or (3 if args.quick else 20)
    processes = args.processes or os.cpu_count() or 1
    load_clip(args.codec, args.cache)  # encode once before any timing
    plan = []
    for callers, viewers in ((1, 0), (1, 1), (1, 3), (big, 2)):  # interleaved: C, then Python
        plan.append(("scenelink", callers, viewers))
        if not args.no_python:
            plan.append(("python", callers, viewers))
    if not args.no_stock:
        plan += [("stock", 1, 0), ("stock", 1, 3)]
    peer = args.peer == "janus" and janus.janus_binary() is not None
    if args.peer == "janus" and not peer:
        print(f"janus not installed, its column is skipped: {janus.INSTALL_HINT}", flush=True)
    if peer:  # A/B/A/B: each SceneLink scenario, then the same against Janus
        steps, plan = plan, []
        for kind, callers, viewers in steps:
            plan.append((kind, callers, viewers))
            if kind == "scenelink":
                plan.append(("janus", callers, viewers))
    print("running direct 1x1 ...", file=sys.stderr, flush=True)
    rows = [direct(seconds, args.codec, args.cache)]
    for kind, callers, viewers in plan * args.rounds:
        print(f"running {kind} {callers}x{viewers} ...", file=sys.stderr, flush=True)
        rows.append(
            scenario(
                kind, callers, viewers, seconds, args.codec, args.cache, processes, args.workers
            )
        )
    print_table(rows, args.codec, seconds)
    if peer:
        print_peer(rows, "janus", args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
