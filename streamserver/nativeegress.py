"""Viewers' RTP built, protected and sent in C: one call per frame instead of Python per packet.

aiortc's sender builds an RtpPacket per payload, serializes it, protects it with pylibsrtp and
sends it through aioice, all in Python. Where the viewer's DTLS transport has a C sender
(streamserver.nativesrtp) and its ICE pair is a plain UDP socket, ``run_rtp`` hands each
frame's payloads to it instead: the same headers (SSRC, sequence numbers, timestamp, marker,
the mid and abs-send-time extensions, through aiortc's own extension map), one abs-send-time
per frame, SRTP protect and batched sendmmsg on that socket, without the GIL. TURN-relayed
viewers (no socket of ours to send on) keep aiortc's path. Retransmissions (NACK) come from
the C sender's history, RTX-wrapped as aiortc does. aiortc 1.16.0 internals, covered by
tests/streamserver/test_native_egress.py; streamserver.patches.install() puts ``run_rtp`` and
``retransmit`` in place.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from typing import TYPE_CHECKING, Any

import aiortc.clock as clock
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender, random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket
from aiortc.utils import random32, uint16_add, uint32_add

from . import nativesrtp

if TYPE_CHECKING:
    from .native import SrtpSender

logger = logging.getLogger(__name__)

PAIR_ATTR = "_scenelink_native_pair"  # on RTCDtlsTransport: the ICE pair its C sender sends to


def route(dtls: RTCDtlsTransport) -> tuple[SrtpSender, Any] | None:
    """(C sender, the socket's asyncio transport) for a viewer reached over plain UDP, or
    None where aiortc's path must send (no C sender, not connected yet, or a TURN relay)."""
    sender = nativesrtp.sender_of(dtls)
    if sender is None:
        return None
    connection = getattr(dtls.transport, "_connection", None)
    pair = connection._nominated.get(1) if connection is not None else None
    if pair is None:
        return None
    transport = pair.protocol.transport
    if getattr(dtls, PAIR_ATTR, None) is not pair:
        sock = transport.get_extra_info("socket")
        if sock is None:  # aioice's TurnTransport: the relay wraps each datagram
            return None
        host, port = pair.remote_addr[:2]
        sender.set_destination(sock.fileno(), host, port)
        setattr(dtls, PAIR_ATTR, pair)
    return sender, transport


def send_frame(
    sender: RTCRtpSender,
    egress: tuple[SrtpSender, Any],
    payload_type: int,
    frame: RTCEncodedFrame,
    sequence_number: int,
    timestamp: int,
) -> int:
    """Send one frame's packets through C, keep aiortc's counters; the next sequence number."""
    dtls = sender.transport
    if dtls._state != State.CONNECTED:
        raise ConnectionError("Cannot send encrypted RTP, not connected")
    c_sender, transport = egress
    extensions = HeaderExtensions()
    extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
    extensions.mid = sender._RTCRtpSender__mid  # type: ignore[attr-defined]
    header_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
    profile, extension = header_map.set(extensions)
    payloads = frame.payloads
    # Datagrams still queued in the event loop go first: then C only protects.
    direct = not transport.get_write_buffer_size()
    wire, leftovers = c_sender.send_frame(
        payloads, payload_type, sequence_number, timestamp, sender._ssrc, profile, extension, direct
    )
    if leftovers:
        pair = dtls.transport._connection._nominated[1]
        for data in leftovers:
            transport.sendto(data, pair.remote_addr)
    count = len(payloads)
    dtls._RTCDtlsTransport__tx_bytes += wire  # type: ignore[attr-defined]
    dtls._RTCDtlsTransport__tx_packets += count  # type: ignore[attr-defined]
    sender._RTCRtpSender__ntp_timestamp = clock.current_ntp_time()  # type: ignore[attr-defined]
    sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
    sender._RTCRtpSender__octet_count += sum(map(len, payloads))  # type: ignore[attr-defined]
    sender._RTCRtpSender__packet_count += count  # type: ignore[attr-defined]
    return uint16_add(sequence_number, count)


async def run_rtp(self: RTCRtpSender, codec: RTCRtpCodecParameters) -> None:
    """aiortc's RTCRtpSender._run_rtp, each frame sent through C where ``route`` allows."""
    s: Any = self  # aiortc's private, name-mangled state
    s._RTCRtpSender__rtp_started.set()
    sequence_number = random_sequence_number()
    timestamp_origin = random32()
    try:
        payload_type = codec.payloadType
        assert payload_type is not None  # a negotiated codec always has one
        while True:
            if not s._RTCRtpSender__track:
                await asyncio.sleep(0.02)
                continue
            enc_frame = await self._next_encoded_frame(codec)
            if enc_frame is None:
                continue
            timestamp = uint32_add(timestamp_origin, enc_frame.timestamp)
            egress = route(self.transport)
            if egress is not None and enc_frame.audio_level is None:
                sequence_number = send_frame(
                    self, egress, payload_type, enc_frame, sequence_number, timestamp
                )
                continue
            for i, payload in enumerate(enc_frame.payloads):  # aiortc's own loop, as it is
                packet = RtpPacket(
                    payload_type=payload_type,
                    sequence_number=sequence_number,
                    timestamp=timestamp,
                )
                packet.ssrc = self._ssrc
                packet.payload = payload
                packet.marker = (i == len(enc_frame.payloads) - 1) and 1 or 0
                packet.extensions.abs_send_time = (clock.current_ntp_time() >> 14) & 0x00FFFFFF
                packet.extensions.mid = s._RTCRtpSender__mid
                if enc_frame.audio_level is not None:
                    packet.extensions.audio_level = (False, -enc_frame.audio_level)
                s._RTCRtpSender__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE] = packet
                packet_bytes = packet.serialize(s._RTCRtpSender__rtp_header_extensions_map)
                await self.transport._send_rtp(packet_bytes)
                s._RTCRtpSender__ntp_timestamp = clock.current_ntp_time()
                s._RTCRtpSender__rtp_timestamp = packet.timestamp
                s._RTCRtpSender__octet_count += len(payload)
                s._RTCRtpSender__packet_count += 1
                sequence_number = uint16_add(sequence_number, 1)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # aiortc's own handling: __rtp_exited must be set, or stop() hangs
        logger.warning("RTCRtpSender(%s) %s", s._RTCRtpSender__kind, traceback.format_exc())
    if s._RTCRtpSender__track:
        s._RTCRtpSender__track.stop()
        s._RTCRtpSender__track = None
    s._RTCRtpSender__encoder = None
    s._RTCRtpSender__rtp_exited.set()


async def retransmit(self: RTCRtpSender, sequence_number: int) -> bool:
    """A packet the viewer NACKed, from the C sender's history (RTX-wrapped as aiortc does);
    False when C did not send it, for aiortc's own ``_retransmit`` to look."""
    s: Any = self
    dtls = self.transport
    c_sender = nativesrtp.sender_of(dtls)
    if c_sender is None:
        return False
    rtx_type = s._RTCRtpSender__rtx_payload_type
    rtx = None
    if rtx_type is not None:
        rtx = (rtx_type, s._RTCRtpSender__rtx_sequence_number, self._rtx_ssrc)
    data = c_sender.retransmit(sequence_number, rtx)
    if data is None:
        return False
    if rtx is not None:
        s._RTCRtpSender__rtx_sequence_number = uint16_add(rtx[1], 1)
    if dtls._state != State.CONNECTED:
        raise ConnectionError("Cannot send encrypted RTP, not connected")
    await dtls.transport._send(data)
    dtls._RTCDtlsTransport__tx_bytes += len(data)  # type: ignore[attr-defined]
    dtls._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
    return True
