"""Prometheus metrics, read at scrape time from counters the media plane keeps anyway.

Nothing here runs per packet: the relay, recorder and spool already count what they do, and
``LiveCounters.collect`` adds them up when Prometheus asks. A session's counters leave with
its media when it ends, so they are kept (``_retired``) to keep the totals from going back;
a session that starts and ends between two scrapes is not counted. The event loop's lag is
sampled a few times a second: the worker's load, as its callers feel it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from recorder.evidence import Evidence
from recorder.recording import SessionRecorder
from signalling.calls.service import SessionService
from signalling.ops.readiness import Readiness
from streamserver.session import MediaSession

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KINDS = ("video", "audio")
LAG_INTERVAL_S = 0.25
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# (metric, kind) -> frames; metric names below, without their prefix and suffix.
Frames = Counter[tuple[str, str]]


def frames_of(media: MediaSession) -> Frames:
    """One session's frame counters by stage and kind."""
    counts: Frames = Counter()
    for kind, relay in (("video", media.video_relay), ("audio", media.audio_relay)):
        stats = relay.stats()
        counts["received", kind] = stats["frames_in"]
        counts["relayed", kind] = stats["frames_out"]
        counts["dropped:relay", kind] = stats["dropped"]
    recorder = media.recorder
    if isinstance(recorder, SessionRecorder):
        for kind, totals in recorder.totals.items():
            counts["recorded", kind] = totals["written"]
            counts["dropped:recorder_skipped", kind] = totals["skipped"]
            counts["dropped:recorder_lost", kind] = totals["lost"]
    return counts


class LiveCounters(Collector):
    """This node's sessions, viewers, frames per stage, upload backlog and rejected fixes."""

    def __init__(
        self, service: SessionService, evidence: Evidence[Any], readiness: Readiness
    ) -> None:
        self._service = service
        self._evidence = evidence
        self._readiness = readiness
        self._seen: set[MediaSession] = set()
        self._retired: Frames = Counter()

    def frames(self) -> tuple[list[MediaSession], Frames]:
        """The live media and every frame counted since this node started."""
        live = self._service.media_sessions()
        for gone in self._seen.difference(live):  # ended: its counters are final
            self._retired.update(frames_of(gone))
        self._seen = set(live)
        total = Counter(self._retired)
        for media in live:
            total.update(frames_of(media))
        return live, total

    def collect(self) -> Iterator[Metric]:
        live, frames = self.frames()
        yield GaugeMetricFamily(
            "scenelink_media_sessions",
            "Sessions whose media is on this node",
            value=len(live),
        )
        yield GaugeMetricFamily(
            "scenelink_viewers",
            "Viewer connections (consoles, officers) on this node",
            value=sum(media.viewer_count for media in live),
        )
        for stage, help_text in (
            ("received", "Encoded frames received from callers"),
            ("relayed", "Encoded frames taken from the relays by viewers and the recorder"),
            ("recorded", "Encoded frames written to evidence parts"),
        ):
            family = CounterMetricFamily(f"scenelink_frames_{stage}", help_text, labels=["kind"])
            for kind in KINDS:
                family.add_metric([kind], frames[stage, kind])
            yield family
        dropped = CounterMetricFamily(
            "scenelink_frames_dropped",
            "Frames not delivered, by stage: relay (a viewer's or the recorder's queue "
            "overflowed, or it waited for a keyframe), recorder_skipped (before a part's first "
            "keyframe), recorder_lost (while recording failed)",
            labels=["stage", "kind"],
        )
        for stage in ("relay", "recorder_skipped", "recorder_lost"):
            for kind in KINDS:
                dropped.add_metric([stage, kind], frames[f"dropped:{stage}", kind])
        yield dropped
        yield CounterMetricFamily(
            "scenelink_fixes_rejected",
            "Location fixes refused (malformed or implausible)",
            value=self._service.fixes_rejected,
        )
        yield from self._evidence_metrics()
        yield GaugeMetricFamily(
            "scenelink_accepting_sessions",
            "1 while this node takes new sessions, 0 while it drains",
            value=1 if self._readiness.accepting else 0,
        )

    def _evidence_metrics(self) -> Iterator[Metric]:
        spool = self._evidence.spool.stats()
        for name, key, help_text in (
            ("scenelink_upload_backlog_sessions", "queued_sessions", "Sessions waiting to upload"),
            ("scenelink_upload_backlog_objects", "pending_objects", "Objects waiting to upload"),
            ("scenelink_upload_backlog_bytes", "pending_bytes", "Bytes waiting to upload"),
            (
                "scenelink_upload_oldest_pending_seconds",
                "oldest_pending_s",
                "Age of the oldest upload waiting",
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=spool[key])
        yield CounterMetricFamily(
            "scenelink_uploaded_objects", "Objects uploaded", value=spool["uploaded_objects"]
        )
        yield CounterMetricFamily(
            "scenelink_uploaded_bytes", "Bytes uploaded", value=spool["uploaded_bytes"]
        )
        yield CounterMetricFamily(
            "scenelink_upload_failures", "Failed upload attempts", value=spool["failures"]
        )
        yield GaugeMetricFamily(
            "scenelink_recording_failures",
            "Sessions whose recording is failing now",
            value=len(self._evidence.recording_failures()),
        )


class Metrics:
    """This node's registry: its own collectors, the process's, and the loop-lag sampler."""

    def __init__(self, counters: LiveCounters) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(counters)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.loop_lag = Histogram(
            "scenelink_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled every 0.25 s): the worker's load",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._sample_lag())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def exposition(self) -> bytes:
        """The text format (runs the collectors: on the loop, where the counters change)."""
        return generate_latest(self.registry)

    async def _sample_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_INTERVAL_S)
            self.loop_lag.observe(max(0.0, time.monotonic() - before - LAG_INTERVAL_S))
