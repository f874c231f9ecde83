"""aiortc's sender, patched: viewers' frames built, protected and sent in C where possible.

What the replacements do lives in streamserver.nativeegress. aiortc 1.16.0 internals, covered
by tests/streamserver/test_native_egress.py.
"""

from __future__ import annotations

from aiortc.rtcrtpsender import RTCRtpSender

from .. import nativeegress

ORIGINAL_RUN_RTP = RTCRtpSender._run_rtp
ORIGINAL_RETRANSMIT = RTCRtpSender._retransmit

run_rtp = nativeegress.run_rtp


async def retransmit(self: RTCRtpSender, sequence_number: int) -> None:
    """From the C sender's history; aiortc's own for a packet aiortc's path sent."""
    if not await nativeegress.retransmit(self, sequence_number):
        await ORIGINAL_RETRANSMIT(self, sequence_number)
