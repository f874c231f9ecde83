"""What a load run found: per caller and viewer, frames sent, received and lost, and latency.

These are plain data (a worker process sends its report to the parent as JSON); the losses
per stage are counted from the send numbers each consumer got (bench.losses numbers the
recorded frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = ("caller_to_server", "server_to_viewers", "server_to_recording")


@dataclass
class ViewerStats:
    join_to_first_keyframe: float | None = None
    video: int = 0
    audio: int = 0
    indices: list[int] = field(default_factory=list)  # the caller's send numbers received
    latencies: list[float] = field(default_factory=list)
    unmatched: int = 0


@dataclass
class CallerStats:
    session_id: str
    video_sent: int = 0
    audio_sent: int = 0
    fixes_sent: int = 0
    first_sent_at: float | None = None  # wall clock of send number 1
    viewers: list[ViewerStats] = field(default_factory=list)
    recorded: list[int] | None = None  # send numbers found in the recording, once read
    # video frames that reached the server's relay but not the recording, by the recorder's
    # own count (its recording_totals event); None where the recording has none
    recorder_missed: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallerStats:
        viewers = [ViewerStats(**v) for v in data.pop("viewers")]
        return cls(**data, viewers=viewers)


@dataclass
class LoadReport:
    callers: list[CallerStats]
    seconds: float
    codec: str
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadReport:
        """Back from ``dataclasses.asdict`` (a worker process's JSON)."""
        callers = [CallerStats.from_dict(dict(c)) for c in data["callers"]]
        return cls(callers, data["seconds"], data["codec"], list(data["errors"]))

    @property
    def latencies(self) -> list[float]:
        return [x for c in self.callers for v in c.viewers for x in v.latencies]

    def latency_ms(self, q: float) -> float | None:
        values = sorted(self.latencies)
        if not values:
            return None
        return 1000 * values[min(len(values) - 1, int(q * len(values)))]

    @property
    def sent(self) -> int:
        return sum(c.video_sent + c.audio_sent for c in self.callers)

    @property
    def video_sent(self) -> int:
        return sum(c.video_sent for c in self.callers)

    @property
    def relayed(self) -> int:
        return sum(v.video + v.audio for c in self.callers for v in c.viewers)

    def stage_losses(self) -> dict[str, int]:
        """Video frames lost per stage, over all callers (see stage_losses)."""
        total = dict.fromkeys(STAGES, 0)
        for caller in self.callers:
            for stage, lost in stage_losses(caller).items():
                total[stage] += lost
        return total

    def summary(self) -> dict[str, Any]:
        joins = [
            v.join_to_first_keyframe
            for c in self.callers
            for v in c.viewers
            if v.join_to_first_keyframe is not None
        ]
        return {
            "callers": len(self.callers),
            "viewers_per_caller": len(self.callers[0].viewers) if self.callers else 0,
            "codec": self.codec,
            "seconds": round(self.seconds, 1),
            "frames_sent": self.sent,
            "video_frames_sent": self.video_sent,
            "frames_relayed": self.relayed,
            "video_frames_lost": self.stage_losses(),
            "latency_ms_p50": self.latency_ms(0.5),
            "latency_ms_p95": self.latency_ms(0.95),
            "max_join_to_first_keyframe_s": max(joins) if joins else None,
            "errors": self.errors,
        }


def stage_losses(caller: CallerStats) -> dict[str, int]:
    """Frames lost per stage for one caller (server_to_recording only once it was read)."""
    consumers = [set(v.indices) for v in caller.viewers]
    if caller.recorded is not None:
        consumers.append(set(caller.recorded))
    heard = [c for c in consumers if c]
    lost = dict.fromkeys(STAGES, 0)
    if not heard:
        return lost
    end = max(max(c) for c in heard)
    common = max(min(c) for c in heard)
    everywhere = {n for n in range(common, end + 1) if not any(n in c for c in consumers)}
    lost["caller_to_server"] = len(everywhere)
    for i, got in enumerate(consumers):
        start = min(got) if got else common
        missing = sum(1 for n in range(start, end + 1) if n not in got and n not in everywhere)
        stage = "server_to_viewers" if i < len(caller.viewers) else "server_to_recording"
        lost[stage] += missing
    if caller.recorder_missed is not None:  # exact, where the recorder counted for itself
        lost["server_to_recording"] = caller.recorder_missed
    return lost
