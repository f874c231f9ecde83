"""The C path's SRTP receiver and sender for a DTLS transport, keyed as aiortc keys its own.

aiortc derives its SRTP keys inside RTCDtlsTransport._setup_srtp and hands them straight to
pylibsrtp, keeping none. After it has run, ``attach`` exports the same keying material again
(an exporter gives the same bytes for the same label and length, RFC 5705) and gives the
transport a streamserver.native._native.SrtpReceiver with the receive key and an SrtpSender with the
send key; the fast path unprotects and parses through the one (``to_packet`` builds the
RtpPacket aiortc's parser would), streamserver.nativeegress sends viewers' frames through the
other.
Without the extension (streamserver.native) nothing is attached and pylibsrtp serves, as
before. aiortc 1.16.0 internals, covered by tests/streamserver/test_native_ingress.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from . import native

if TYPE_CHECKING:
    from .native import RtpFields, SrtpReceiver, SrtpSender

logger = logging.getLogger(__name__)

RECEIVER_ATTR = "_scenelink_native_rx"  # on RTCDtlsTransport: its SrtpReceiver, or absent
SENDER_ATTR = "_scenelink_native_tx"  # on RTCDtlsTransport: its SrtpSender, or absent


def srtp_keys(dtls: RTCDtlsTransport) -> tuple[int, bytes, bytes] | None:
    """(libsrtp profile, receive key and salt, send key and salt) as aiortc derived them."""
    ssl = dtls._ssl
    if ssl is None:
        return None
    selected = ssl.get_selected_srtp_profile()
    for profile in dtls._srtp_profiles:
        if profile.openssl_profile == selected:
            break
    else:
        return None
    view = ssl.export_keying_material(
        b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
    )
    rx, tx = (0, 1) if dtls._role == "server" else (1, 0)
    return (
        profile.libsrtp_profile,
        profile.get_key_and_salt(view, rx),
        profile.get_key_and_salt(view, tx),
    )


def attach(dtls: RTCDtlsTransport) -> None:
    """Give a transport whose SRTP aiortc just set up a native receiver and sender, when the
    extension runs; if they cannot be made (a profile this libsrtp lacks) pylibsrtp serves."""
    setattr(dtls, RECEIVER_ATTR, None)
    setattr(dtls, SENDER_ATTR, None)
    if native.NATIVE is None or dtls._rx_srtp is None:
        return
    keys = srtp_keys(dtls)
    if keys is None:
        return
    profile, rx, tx = keys
    try:
        receiver = native.NATIVE.SrtpReceiver(profile, rx)
        sender = native.NATIVE.SrtpSender(profile, tx)
    except ValueError:
        logger.warning("native: no C SRTP for profile %d, using pylibsrtp", profile)
        return
    setattr(dtls, RECEIVER_ATTR, receiver)
    setattr(dtls, SENDER_ATTR, sender)


def receiver_of(dtls: RTCDtlsTransport) -> SrtpReceiver | None:
    """The transport's native SRTP receiver, if it has one."""
    receiver: SrtpReceiver | None = getattr(dtls, RECEIVER_ATTR, None)
    return receiver


def sender_of(dtls: RTCDtlsTransport) -> SrtpSender | None:
    """The transport's native SRTP sender, if it has one (streamserver.nativeegress)."""
    sender: SrtpSender | None = getattr(dtls, SENDER_ATTR, None)
    return sender


def to_packet(fields: RtpFields, extensions_map: HeaderExtensionsMap) -> RtpPacket:
    """The RtpPacket that aiortc's RtpPacket.parse makes of the same plain packet."""
    marker, payload_type, seq, timestamp, ssrc, csrc, profile, extension, payload, padding = fields
    packet = RtpPacket(payload_type, marker, seq, timestamp, ssrc, payload)
    if csrc:
        packet.csrc = list(csrc)
    if extension is not None:
        packet.extensions = extensions_map.get(profile, extension)
    packet.padding_size = padding
    return packet
