"""REMB feedback: aiortc's estimator fed once per send-time group, REMB at a reduced rate."""

from __future__ import annotations

import inspect

import aiortc.rtcrtpreceiver as rtcrtpreceiver
from aiortc.rate import RemoteBitrateEstimator

from streamserver import bandwidth
from streamserver.bandwidth import GROUP_TICKS, REMB_INTERVAL_MS, GroupedBitrateEstimator, Remb

MS = (1 << 18) // 1000  # abs-send-time ticks in a millisecond (rounded down)


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


def test_packets_of_one_burst_are_fed_as_one_sample_with_their_sizes_summed() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    # A frame of 5 packets sent 1 ms apart, then the next frame 33 ms later.
    for i in range(5):
        grouped.add(1000 + i, 100_000 + i * MS, 1200, 7)
    assert inner.calls == []  # the group is still open
    grouped.add(1033, 100_000 + 33 * MS, 900, 7)
    assert inner.calls == [(1004, 100_000 + 4 * MS, 6000, 7)]
    # A packet sent earlier than the open group (reordered) joins it, not a group of its own.
    grouped.add(1040, 100_000 + 30 * MS, 100, 7)
    grouped.add(1066, 100_000 + 66 * MS, 50, 7)
    assert inner.calls[-1] == (1040, 100_000 + 33 * MS, 1000, 7)
    assert grouped.fed == 2


def test_groups_follow_the_24_bit_wrap_of_the_send_time() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    top = (1 << 24) - MS
    grouped.add(0, top, 10, 1)
    grouped.add(1, (top + 2 * MS) & 0xFFFFFF, 10, 1)  # 2 ms later, past the wrap: same group
    grouped.add(40, (top + GROUP_TICKS + 40 * MS) & 0xFFFFFF, 10, 1)
    assert inner.calls == [(1, (top + 2 * MS) & 0xFFFFFF, 20, 1)]


def test_remb_goes_out_at_most_once_a_second_unless_the_estimate_falls() -> None:
    inner = Recording()
    grouped = GroupedBitrateEstimator(inner)
    sent: list[tuple[int, int]] = []
    for frame in range(91):  # 3 s of 30 fps frames, one packet each
        now = 10_000 + frame * 33
        if frame == 45:
            inner.bitrate = 950_000  # a small fall waits its turn
        if frame == 60:
            inner.bitrate = 700_000  # a real fall goes at once
        remb = grouped.add(now, (frame * 33 * MS) & 0xFFFFFF, 1000, 3)
        if remb is not None:
            sent.append((now, remb[0]))
    assert len(inner.calls) == 90  # every group reached the estimator
    times = [t for t, _ in sent]
    assert sent[0][1] == 1_000_000
    assert (10_000 + 60 * 33, 700_000) in sent  # fed at frame 61, as the group of frame 60
    steady = [b - a for a, b in zip(times, times[1:], strict=False) if b != 10_000 + 60 * 33]
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
