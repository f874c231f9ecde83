"""What a link invites the caller to do: the invite type and everything that follows from it.

The pilots' use cases beside "video and location" and "location only" (issue 14): a bail or
court-order check (is the person where they must be?), a screening appointment (a victim who
reported by phone sends photos and video at a set time) and a missing person (track until the
handler stops). One table says, per type, what the page shares, which SMS wording goes out
and how long the link may be used; everything else reads it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SessionMode = Literal["video", "location", "bail_check", "screening", "missing_person"]
Media = Literal["video", "location"]  # what the caller's page asks for
# session_max: the link lives SCENELINK_SESSION_MAX_S after first use; until_stopped: until
# the handler ends the session (within SCENELINK_TRACKING_MAX_DAYS, a forgotten session's end).
Tracking = Literal["session_max", "until_stopped"]


@dataclass(frozen=True, slots=True)
class InviteType:
    label: str  # on the console and in search results
    media: Media
    sms_setting: str  # the Settings field holding its SMS wording
    tracking: Tracking
    required_place: bool = False  # the handler gives the place the caller must be at
    appointment: bool = False  # the link opens only in a set window
    uploads_first: bool = False  # the page offers photos and video before live video


INVITES: dict[SessionMode, InviteType] = {
    "video": InviteType("Video and location", "video", "sms_template", "session_max"),
    "location": InviteType("Location only", "location", "sms_template_location", "session_max"),
    "bail_check": InviteType(
        "Bail or court-order check",
        "location",
        "sms_template_bail",
        "session_max",
        required_place=True,
    ),
    "screening": InviteType(
        "Screening appointment",
        "video",
        "sms_template_screening",
        "session_max",
        appointment=True,
        uploads_first=True,
    ),
    "missing_person": InviteType(
        "Missing person", "location", "sms_template_missing", "until_stopped"
    ),
}


def invite(mode: SessionMode) -> InviteType:
    return INVITES[mode]


def media_of(recorded: str) -> Media:
    """What a recorded ``session_created``'s mode shared (a bundle read back, where the mode
    is only a string); an unknown one is taken as video, the default invite."""
    return next((kind.media for mode, kind in INVITES.items() if mode == recorded), "video")
