"""The caller's bandwidth estimate (REMB), fed ten times a second and sent at a reduced rate.

aiortc's receiver feeds its RemoteBitrateEstimator every video packet, and while the detector
says "overusing" each of those packets also recomputes the estimate and sends a REMB: a
quarter of the receive path's time under load, and still the largest piece of a caller's
per-frame Python when fed once per frame. The estimator measures groups of packets (its
InterArrival: the send-time and arrival deltas between groups, and the bytes received), so it
is fed one sample per SAMPLE_MS of send time here: the group's last send time and arrival and
its total size. Queueing on the way shows as arrival deltas growing against send deltas at any
spacing; what is lost is only sensitivity to bursts shorter than a tenth of a second. On the C
path the fast path offers it one sample per frame; on the Python path aiortc's receiver offers
every packet; the grouping here does the rest on both. A REMB then goes to the phone at most
every REMB_INTERVAL_MS, except at once when the estimate falls by REMB_DROP or more: the phone
must learn of a congested uplink quickly, not of every small change. aiortc 1.16.0 internals,
covered by tests/streamserver/test_bandwidth.py; streamserver.patches.install() puts it in each
receiver.
"""

from __future__ import annotations

from aiortc.rate import RemoteBitrateEstimator

ABS_SEND_TIME_MASK = 0xFFFFFF  # 24-bit, 6.18 fixed-point seconds (RFC abs-send-time)
SAMPLE_MS = 100  # send time one sample covers (aiortc groups within 5 ms; frames are 33 ms)
SAMPLE_TICKS = SAMPLE_MS * (1 << 18) // 1000  # in abs-send-time units
REMB_INTERVAL_MS = 1000  # at most one REMB a second while the estimate holds or rises
REMB_DROP = 0.1  # ... but at once when it falls by a tenth or more

Remb = tuple[int, list[int]]  # (bitrate, SSRCs), as aiortc's estimator returns


_ESTIMATOR = "_RTCRtpReceiver__remote_bitrate_estimator"


class GroupedBitrateEstimator:
    """aiortc's estimator behind a sample accumulator and a REMB rate limit (same ``add``)."""

    def __init__(self, inner: RemoteBitrateEstimator | None = None) -> None:
        self.inner = inner if inner is not None else RemoteBitrateEstimator()
        self._first: int | None = None  # send time of the open sample's first packet
        self._last = 0  # ... and of its newest
        self._arrival_ms = 0
        self._size = 0
        self._ssrc = 0
        self._sent_ms: int | None = None  # when the last REMB was let out
        self._sent_bitrate = 0
        self.fed = 0  # samples given to aiortc's estimator (for tests and the benchmark)

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> Remb | None:
        """Take one packet (or one frame's worth); a REMB to send, now and then."""
        first = self._first
        if first is not None:
            ahead = (abs_send_time - first) & ABS_SEND_TIME_MASK
            # The same sample, or a packet sent a little before it (reordered); anything else,
            # a jump either way (a pause of half the 64 s wrap, a sender's clock reset), starts
            # a new one rather than joining this one until the send time wraps round.
            if ahead < SAMPLE_TICKS or ahead > ABS_SEND_TIME_MASK - SAMPLE_TICKS:
                self._size += payload_size
                self._arrival_ms = arrival_time_ms
                if 0 < (abs_send_time - self._last) & ABS_SEND_TIME_MASK < SAMPLE_TICKS:
                    self._last = abs_send_time
                return None
        remb = None
        if first is not None:
            remb = self._feed(self._arrival_ms, self._last, self._size, self._ssrc)
        self._first = self._last = abs_send_time
        self._arrival_ms, self._size, self._ssrc = arrival_time_ms, payload_size, ssrc
        return remb

    def _feed(self, arrival_ms: int, send_time: int, size: int, ssrc: int) -> Remb | None:
        self.fed += 1
        remb = self.inner.add(
            arrival_time_ms=arrival_ms, abs_send_time=send_time, payload_size=size, ssrc=ssrc
        )
        if remb is None:
            return None
        bitrate = remb[0]
        due = self._sent_ms is None or arrival_ms - self._sent_ms >= REMB_INTERVAL_MS
        if due or bitrate <= self._sent_bitrate * (1 - REMB_DROP):
            self._sent_ms, self._sent_bitrate = arrival_ms, bitrate
            return remb
        return None


def of(receiver: object) -> GroupedBitrateEstimator | None:
    """The receiver's estimator, once ``group_feedback`` has put it there (video only)."""
    estimator = getattr(receiver, _ESTIMATOR, None)
    return estimator if isinstance(estimator, GroupedBitrateEstimator) else None


def group_feedback(receiver: object) -> None:
    """Put a GroupedBitrateEstimator in place of a video receiver's estimator (audio has none)."""
    estimator = getattr(receiver, _ESTIMATOR, None)
    if isinstance(estimator, RemoteBitrateEstimator):
        setattr(receiver, _ESTIMATOR, GroupedBitrateEstimator(estimator))
