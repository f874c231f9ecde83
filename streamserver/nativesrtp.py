"""The C ingress's SRTP receiver for a DTLS transport, keyed as aiortc keys its own.

aiortc derives its SRTP keys inside RTCDtlsTransport._setup_srtp and hands them straight to
pylibsrtp, keeping none. After it has run, ``attach`` exports the same keying material again
(an exporter gives the same bytes for the same label and length, RFC 5705) and gives the
transport a streamserver._native.SrtpReceiver with the receive key; the fast path then
unprotects and parses through it (``to_packet`` builds the RtpPacket aiortc's parser would).
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
    from ._native import RtpFields, SrtpReceiver

logger = logging.getLogger(__name__)

RECEIVER_ATTR = "_scenelink_native_rx"  # on RTCDtlsTransport: its SrtpReceiver, or absent


def rx_key(dtls: RTCDtlsTransport) -> tuple[int, bytes] | None:
    """(libsrtp profile, key and salt) that aiortc gave its receive session, as it derived it."""
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
    return profile.libsrtp_profile, profile.get_key_and_salt(
        view, 0 if dtls._role == "server" else 1
    )


def attach(dtls: RTCDtlsTransport) -> None:
    """Give a transport whose SRTP aiortc just set up a native receiver, when the extension
    runs; one that cannot be made (a profile this libsrtp lacks) leaves pylibsrtp in charge."""
    setattr(dtls, RECEIVER_ATTR, None)
    if native.NATIVE is None or dtls._rx_srtp is None:
        return
    key = rx_key(dtls)
    if key is None:
        return
    try:
        setattr(dtls, RECEIVER_ATTR, native.NATIVE.SrtpReceiver(*key))
    except ValueError:
        logger.warning("native: no C SRTP receiver for profile %d, using pylibsrtp", key[0])


def receiver_of(dtls: RTCDtlsTransport) -> SrtpReceiver | None:
    """The transport's native SRTP receiver, if it has one."""
    receiver: SrtpReceiver | None = getattr(dtls, RECEIVER_ATTR, None)
    return receiver


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
