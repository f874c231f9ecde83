"""Offers are checked before any peer connection is touched, so a bad one changes nothing:
what aiortc would refuse (or accept uselessly) only while applying it is refused here first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from aiortc import sdp
from aiortc.codecs import CODECS
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.rtcdtlstransport import X509_DIGEST_ALGORITHMS
from aiortc.rtcpeerconnection import find_common_codecs

MID = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,32}")  # an SDP token (RFC 4566)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # SDP never carries these
# What aiortc raises when it cannot apply an offer that parsed: the offer's fault.
LATE_ERRORS = (ValueError, InvalidAccessError, InvalidStateError, OperationError)


class MalformedOffer(ValueError):
    pass


def check_offer(text: str, required: set[str], any_of: set[str] | None = None) -> None:
    """Refuse an SDP offer that does not parse, lacks the media sections it needs, or that
    aiortc could not connect with.

    ``required``: kinds (``audio``, ``video``, ``application``) that must all be present;
    ``any_of``: at least one of these must be.
    """
    if CONTROL.search(text):
        raise MalformedOffer("contains control characters")
    try:
        parsed = sdp.SessionDescription.parse(text)
    except Exception as exc:  # the parser raises whatever the text provokes
        raise MalformedOffer(f"does not parse: {exc}") from None
    kinds = {m.kind for m in parsed.media}
    if not text.lstrip().startswith("v=0") or not kinds:
        raise MalformedOffer("no media sections")
    if missing := required - kinds:
        raise MalformedOffer(f"missing {', '.join(sorted(missing))} section")
    if any_of and not kinds & any_of:
        raise MalformedOffer(f"needs one of {', '.join(sorted(any_of))}")
    mids = [m.rtp.muxId for m in parsed.media]
    if not all(mid and MID.fullmatch(mid) for mid in mids) or len(set(mids)) != len(mids):
        raise MalformedOffer("each media section needs its own a=mid token")
    for group in parsed.group:
        if not {str(item) for item in group.items} <= set(mids):
            raise MalformedOffer(f"{group.semantic} group names a mid no section has")
    for media in parsed.media:
        _check_media(media)


def _check_media(media: sdp.MediaDescription) -> None:
    if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
        raise MalformedOffer(f"{media.kind} section has no ICE credentials")
    if media.dtls is None:
        raise MalformedOffer(f"{media.kind} section has no DTLS role (a=setup)")
    if not any(f.algorithm.lower() in X509_DIGEST_ALGORITHMS for f in media.dtls.fingerprints):
        raise MalformedOffer(f"{media.kind} section has no usable DTLS fingerprint")
    if media.kind in ("audio", "video"):
        if not media.rtcp_mux:
            raise MalformedOffer(f"{media.kind} section without rtcp-mux")
        if not find_common_codecs(CODECS[media.kind], media.rtp.codecs):
            raise MalformedOffer(f"{media.kind} section offers no codec this server supports")


@contextmanager
def refused_late() -> Iterator[None]:
    """Around applying an offer: aiortc's late refusals become ``MalformedOffer`` too."""
    try:
        yield
    except LATE_ERRORS as exc:
        raise MalformedOffer(f"refused while applying it: {exc}") from None
