"""Offers are checked before any peer connection is touched, so a bad one changes nothing."""

from __future__ import annotations

from aiortc import sdp


class MalformedOffer(ValueError):
    pass


def check_offer(text: str, required: set[str], any_of: set[str] | None = None) -> None:
    """Refuse an SDP offer that does not parse or lacks the media sections it needs.

    ``required``: kinds (``audio``, ``video``, ``application``) that must all be present;
    ``any_of``: at least one of these must be.
    """
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
    for media in parsed.media:
        if media.kind in ("audio", "video") and not media.rtp.codecs:
            raise MalformedOffer(f"{media.kind} section lists no codecs")
