"""REMB feedback: aiortc's estimator fed a sample per 100 ms of send time, REMB at a lower rate."""

from __future__ import annotations

import inspect

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc.rate import RemoteBitrateEstimator

from streamserver import bandwidth
from streamserver.bandwidth import REMB_INTERVAL_MS, SAMPLE_MS, GroupedBitrateEstimator, Remb


def at(ms: float) -> int:
    """A send time ``ms`` milliseconds from zero, in abs-send-time units (24-bit wrap)."""
    return round(ms * (1 << 18) / 1000) & 0xFFFFFF


class Recording(RemoteBitrateEstimator):
    """aiortc's estimator that records what it is fed and answers a fixed REMB each time."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, int, int, int]] = []
        self.bitrate = 1_000_000

    def add(
        self, arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> Remb | None:
        self.calls.append((arrival_time_ms, abs_send_time, payload_size, ssrc))
        return self.bitrate, [ssrc]


def test_the_estimator_internals_we_replace_still_exist() -> None:
    init = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver.__init__)
    assert "self.__remote_bitrate_estimator = RemoteBitrateEstimator()" in init
    handler = inspect.getsource(rtcrtpreceiver.RTCRtpReceiver._handle_rtp_packet)
    assert "remb = self.__remote_bitrate_estimator.add(" in handler


def test_packets_of_a_tenth_of_a_second_are_fed_as_one_sample_with_their_sizes_summed() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    # Frames of 5 packets sent 1 ms apart, 40 ms between frames: three frames to a sample.
    for frame in range(4):
        for i in range(5):
            grouped.add(1000 + 40 * frame + i, at(500 + 40 * frame + i), 1200, 7)
    assert inner.calls == [(1084, at(584), 18_000, 7)]
    # A packet sent earlier than the open sample (reordered) joins it, not a sample of its own.
    grouped.add(1130, at(618), 100, 7)
    grouped.add(1230, at(500 + 230), 50, 7)
    assert inner.calls[-1] == (1130, at(624), 6100, 7)
    assert grouped.fed == 2


def test_samples_follow_the_24_bit_wrap_of_the_send_time() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    top = (1 << 24) - at(1)
    grouped.add(0, top, 10, 1)
    grouped.add(10, (top + at(20)) & 0xFFFFFF, 10, 1)  # 20 ms later, past the wrap: same sample
    grouped.add(120, (top + at(SAMPLE_MS + 20)) & 0xFFFFFF, 10, 1)
    assert inner.calls == [(10, (top + at(20)) & 0xFFFFFF, 20, 1)]


def test_remb_goes_out_at_most_once_a_second_unless_the_estimate_falls() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    sent: list[tuple[int, int]] = []
    for tenth in range(31):  # 3 s, a sample every 100 ms
        now = 10_000 + tenth * 100
        if tenth == 15:
            inner.bitrate = 950_000  # a small fall waits its turn
        if tenth == 20:
            inner.bitrate = 700_000  # a real fall goes at once
        remb = grouped.add(now, at(tenth * 100), 1000, 3)
        if remb is not None:
            sent.append((now, remb[0]))
    assert len(inner.calls) == 30  # every sample reached the estimator
    times = [t for t, _ in sent]
    assert sent[0][1] == 1_000_000
    assert (10_000 + 20 * 100, 700_000) in sent  # at once, not a second after the last
    steady = [b - a for a, b in zip(times, times[1:], strict=False) if b != 10_000 + 20 * 100]
    assert all(gap >= REMB_INTERVAL_MS for gap in steady), sent
    assert len(sent) <= 5


def test_a_video_receiver_gets_the_grouped_estimator_once() -> None:
    class Receiver:
        _RTCRtpReceiver__remote_bitrate_estimator: object = RemoteBitrateEstimator()

    receiver = Receiver()
    bandwidth.group_feedback(receiver)
    grouped = bandwidth.of(receiver)
    assert grouped is not None
    bandwidth.group_feedback(receiver)  # idempotent: not wrapped twice
    assert bandwidth.of(receiver) is grouped

    class Audio:
        _RTCRtpReceiver__remote_bitrate_estimator = None

    audio = Audio()
    bandwidth.group_feedback(audio)
    assert bandwidth.of(audio) is None


def test_after_a_long_pause_in_sending_the_samples_go_on() -> None:
    """A phone that stops sending video for 40 s (more than half the 64 s send-time wrap)
    must not have every later packet taken as 'older' and piled into one sample."""
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    for tenth in range(3):
        grouped.add(1000 + 100 * tenth, at(100 * tenth), 1000, 9)
    fed = len(inner.calls)
    for tenth in range(5):  # resumes 40 s later
        grouped.add(41_200 + 100 * tenth, at(40_200 + 100 * tenth), 1000, 9)
    assert len(inner.calls) == fed + 5
    assert inner.calls[-1][2] == 1000  # each a sample of its own, not a pile
