"""aiortc's receiver and sender, patched: encoded frames out, sender reports, keyframe requests.

Each replacement keeps aiortc's own behaviour (the original is called) and adds ours, which
lives in streamserver.ingest. aiortc 1.16.0 internals, covered by
tests/streamserver/test_ingest.py.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import Any

import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender

from .. import bandwidth, ingest

ORIGINAL_DECODER_WORKER = rtcrtpreceiver.decoder_worker
ORIGINAL_RECEIVE = rtcrtpreceiver.RTCRtpReceiver.receive
ORIGINAL_SEND_KEYFRAME = rtcrtpsender.RTCRtpSender._send_keyframe
ORIGINAL_HANDLE_RTCP = rtcrtpreceiver.RTCRtpReceiver._handle_rtcp_packet


def idle_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """Replacement for aiortc's decoder_worker: the FrameSink already delivered everything."""
    del loop, input_q, output_q, decode_error


async def receive(self: rtcrtpreceiver.RTCRtpReceiver, parameters: Any) -> None:
    """aiortc's receive(), with a FrameSink in place of the decoder queue and the bandwidth
    estimator fed by groups (streamserver.bandwidth), before it starts."""
    ingest.give_frame_sink(self)
    bandwidth.group_feedback(self)
    await ORIGINAL_RECEIVE(self, parameters)


def send_keyframe(self: rtcrtpsender.RTCRtpSender) -> None:
    """Viewer sent PLI/FIR: keep aiortc's behaviour and ask the track's publisher too."""
    ORIGINAL_SEND_KEYFRAME(self)
    ingest.ask_publisher_for_keyframe(self)


async def handle_rtcp_packet(self: rtcrtpreceiver.RTCRtpReceiver, packet: Any) -> None:
    """aiortc's handler, then our listener for sender reports (the (NTP, RTP) pairs)."""
    await ORIGINAL_HANDLE_RTCP(self, packet)
    ingest.deliver_sender_report(self, packet)
