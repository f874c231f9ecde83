"""Every rebinding of aiortc and aioice internals, in one place, behind one install().

aiortc has no public API for forwarding encoded media, so the media plane replaces a few of
its (and aioice's) private functions. What each replacement does lives with its concept:

- ``ingest`` and ``reassembly``: receivers release complete frames as EncodedFrame, with no
  decoder; they report RTCP sender reports; viewers' PLI/FIR reach the publisher
  (replacements in ``patches/receiver.py``);
- ``packetize``: senders take frames packetized once for every viewer;
- ``nativeegress``: viewers' senders build, protect and send each frame's packets in C, where
  the C extension runs and the viewer is reached over plain UDP (``patches/sender.py``);
- ``fastpath``: SRTP goes from the socket callback straight to the receiver, unprotected and
  parsed in C when the extension runs (``nativesrtp``; replacements in ``patches/transport.py``);
- ``depayload``: receivers strip H.264 and VP8 payload headers in C when the extension runs;
- ``bandwidth``: the REMB estimator is fed once per packet group and REMB sent at a reduced
  rate (``patches/receiver.py``);
- ``fastclock``: aiortc's per-packet clock reads are cheaper.

They depend on the exact versions pinned in pyproject.toml (``PINNED`` here must match), and
``install()`` refuses to patch any other.
"""

from __future__ import annotations

from importlib import metadata

import aioice.ice as ice
import aiortc.clock as clock
import aiortc.rtcrtpreceiver as rtcrtpreceiver
import aiortc.rtcrtpsender as rtcrtpsender
from aiortc.rtcdtlstransport import RTCDtlsTransport

from .. import depayload, fastclock, fastpath, packetize
from ..reassembly import CompletingJitterBuffer
from . import receiver, sender, transport

PINNED = {"aiortc": "1.16.0", "aioice": "0.13.0", "av": "18.1.0"}
"""The versions whose internals the patches were written and tested against."""

_checked = False


class UnsupportedVersionError(RuntimeError):
    """An installed aiortc, aioice or av is not the version the patches were written for."""


def check_versions() -> None:
    """Raise UnsupportedVersionError unless the installed versions are exactly ``PINNED``."""
    wrong = []
    for name, pinned in PINNED.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{name} {installed} (needs {pinned})")
    if wrong:
        raise UnsupportedVersionError(
            "streamserver patches private internals of aiortc and aioice and cannot run with "
            + ", ".join(wrong)
            + ": install the versions pinned in pyproject.toml"
        )


def installed() -> bool:
    """Whether ``install()`` has run: every receiver's track is then fed by a FrameSink."""
    return rtcrtpreceiver.RTCRtpReceiver.receive is receiver.receive


def install() -> None:
    """Patch aiortc and aioice for the forwarding media plane (idempotent).

    Checks the installed versions once, then puts every replacement in place (again, when
    called again: each is a plain assignment of the same function).
    """
    global _checked
    if not _checked:
        check_versions()
        _checked = True
    # fastclock: the two hot clock functions
    clock.current_ms = fastclock.current_ms
    clock.current_ntp_time = fastclock.current_ntp_time
    # packetize: senders take Packetized frames
    rtcrtpsender.get_encoder = packetize.forwarding_encoder  # type: ignore[attr-defined,assignment]
    # nativeegress: viewers' packets built, protected and sent in C (aiortc's path without it)
    rtcrtpsender.RTCRtpSender._run_rtp = sender.run_rtp  # type: ignore[method-assign]
    rtcrtpsender.RTCRtpSender._retransmit = sender.retransmit  # type: ignore[method-assign]
    # fastpath: SRTP from the socket callback straight to the receiver
    setattr(ice.Connection, fastpath.FAST_PATH_ATTR, None)
    ice.StunProtocol.datagram_received = transport.datagram_received  # type: ignore[method-assign]
    ice.Connection.data_received = transport.data_received  # type: ignore[method-assign]
    RTCDtlsTransport._set_state = transport.set_state  # type: ignore[method-assign]
    RTCDtlsTransport._setup_srtp = transport.setup_srtp  # type: ignore[method-assign]
    RTCDtlsTransport._get_stats = transport.get_stats  # type: ignore[method-assign]
    # ingest: complete frames out as EncodedFrame, no decoder; sender reports; PLI/FIR upstream
    rtcrtpreceiver.JitterBuffer = CompletingJitterBuffer  # type: ignore[attr-defined]
    # depayload: H.264 and VP8 payload headers stripped in C when the extension runs
    rtcrtpreceiver.depayload = depayload.depayload  # type: ignore[attr-defined]
    rtcrtpreceiver.decoder_worker = receiver.idle_worker
    rtcrtpreceiver.RTCRtpReceiver.receive = receiver.receive  # type: ignore[method-assign]
    rtcrtpsender.RTCRtpSender._send_keyframe = receiver.send_keyframe  # type: ignore[method-assign]
    rtcrtpreceiver.RTCRtpReceiver._handle_rtcp_packet = receiver.handle_rtcp_packet  # type: ignore[method-assign]


__all__ = ["PINNED", "UnsupportedVersionError", "check_versions", "install", "installed"]
