"""What the caller's page says it can share, and the one line the call handler acts on.

The page reports its whole state (``CallerStateMessage``) whenever any part changes: over the
"location" data channel, or ``POST /api/caller/state`` when it has no channel. The session
keeps the last one (``CallerState``, without ``type``); ``caller_summary`` turns it into the
console's line. Every line is in ``LINES``, and the order of the checks in
``caller_summary`` is the order of importance: the first problem found is the one shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

# "busy": taken by the phone call; "lost": the track ended; "muted": the track fired mute
# (iOS, when the caller switches to the dialler); "off": not asked (a location-only invite).
Camera = Literal["on", "refused", "unavailable", "lost", "muted", "off"]
Microphone = Literal["on", "refused", "busy", "muted", "off"]
Location = Literal["on", "refused", "unavailable", "off"]
Page = Literal["visible", "hidden", "frozen"]
Network = Literal["online", "offline"]


class CallerState(TypedDict):
    """The caller's page as it last reported itself."""

    camera: Camera
    microphone: Microphone
    location: Location
    page: Page
    network: Network
    webrtc: bool  # the browser has WebRTC (else location goes over HTTPS)
    declined: bool  # the caller pressed "No thanks"


class CallerStateMessage(CallerState):
    """The page's report of its whole state (data channel or ``POST /api/caller/state``)."""

    type: Literal["caller_state"]


class InvalidCallerState(ValueError):
    """Why a report was refused (the field and the problem); nothing changes."""


_CHOICES: Final[dict[str, tuple[str, ...]]] = {
    "camera": get_args(Camera),
    "microphone": get_args(Microphone),
    "location": get_args(Location),
    "page": get_args(Page),
    "network": get_args(Network),
}
_FLAGS: Final = ("webrtc", "declined")


def parse_caller_state(message: Mapping[str, Any]) -> CallerState:
    """The state a ``caller_state`` message reports; every field required, nothing more."""
    if message.get("type") != "caller_state":
        raise InvalidCallerState("type: not a caller_state message")
    if extra := set(message) - {"type", *_CHOICES, *_FLAGS}:
        raise InvalidCallerState(f"{sorted(extra)[0]}: unknown field")
    for key, allowed in _CHOICES.items():
        if key not in message:
            raise InvalidCallerState(f"{key}: missing")
        if message[key] not in allowed or not isinstance(message[key], str):
            raise InvalidCallerState(f"{key}: must be one of {', '.join(allowed)}")
    for key in _FLAGS:
        if not isinstance(message.get(key), bool):
            raise InvalidCallerState(f"{key}: must be true or false")
    return {
        "camera": message["camera"],
        "microphone": message["microphone"],
        "location": message["location"],
        "page": message["page"],
        "network": message["network"],
        "webrtc": message["webrtc"],
        "declined": message["declined"],
    }


SummaryKey = Literal[
    "waiting",
    "opened",
    "link_refused",
    "declined",
    "stopped",
    "offline",
    "frozen",
    "hidden",
    "no_video_browser",
    "camera_blocked",
    "camera_stopped",
    "location_blocked",
    "location_unavailable",
    "microphone_busy",
    "microphone_blocked",
    "video_and_location",
    "video_only",
    "location_only",
]

# Every line the console can show for the caller, in one place.
LINES: Final[dict[SummaryKey, str]] = {
    "waiting": "Waiting for the caller",
    "opened": "Link opened",
    "link_refused": "Link expired when tapped: use Resend",
    "declined": "Declined to share",
    "stopped": "Caller stopped sharing: ask them to tap Start sharing again",
    "offline": "Caller's phone is offline",
    "frozen": "Page paused by the phone: ask them to come back to the browser",
    "hidden": "Caller left the page: ask them to come back to the browser",
    "no_video_browser": (
        "This browser cannot send video (in-app browser?): "
        "ask them to open the link in Safari or Chrome"
    ),
    "camera_blocked": (
        "Camera blocked on the phone: ask them to allow it (iPhone: Settings > Safari > Camera)"
    ),
    "camera_stopped": "Camera stopped: ask them to come back to the browser",
    "location_blocked": (
        "Location blocked: ask them to allow location "
        "(iPhone: Settings > Privacy > Location Services > Safari)"
    ),
    "location_unavailable": "Location unavailable: ask them to turn on Location Services",
    "microphone_busy": "Microphone in use by the phone call: audio is on the voice call",
    "microphone_blocked": "Microphone blocked: audio is on the voice call",
    "video_and_location": "Sharing video and location",
    "video_only": "Sharing video (no location)",
    "location_only": "Sharing location",
}


def shares_nothing(state: CallerState) -> bool:
    """Camera, microphone and location all "off": before Agree, or after the caller's Stop."""
    return state["camera"] == state["microphone"] == state["location"] == "off"


def stopped_sharing(before: CallerState | None, now: CallerState, stopped: bool) -> bool:
    """Whether the caller has pressed Stop, given the last report ``before`` this one and
    whether they had ``stopped`` by then: the page reports everything "off" (the session
    stays open), which before Agree only means it has not asked yet. So a report that
    shares nothing is a Stop when it follows one with something on, asked or refused, and
    stays one until anything is on again."""
    if not shares_nothing(now):
        return False
    return stopped or (before is not None and not shares_nothing(before))


def summary_key(
    mode: str,
    opened: bool,
    state: CallerState | None,
    link_refused: bool,
    stopped: bool = False,
) -> SummaryKey:
    """The most important thing the call handler should know, for a session in ``mode``
    ("video" or "location") whose link was ``opened``, and was ``link_refused`` since;
    ``stopped``: the caller pressed Stop (``stopped_sharing``)."""
    if link_refused and not opened:
        return "link_refused"
    if state is None:
        return "opened" if opened else "waiting"
    if state["declined"]:
        return "declined"
    if state["network"] == "offline":
        return "offline"
    if state["page"] == "frozen":
        return "frozen"
    if state["page"] == "hidden":
        return "hidden"
    if stopped and shares_nothing(state):
        return "stopped"
    location = state["location"]
    if mode == "video":
        camera = state["camera"]
        if not state["webrtc"] or camera == "unavailable":
            return "no_video_browser"
        if camera == "refused":
            return "camera_blocked"
        if camera in ("lost", "muted"):
            return "camera_stopped"
        if camera == "off" and location == "off":
            return "opened"  # not asked yet: the caller has not agreed
    if location == "refused":
        return "location_blocked"
    if mode == "location" or state["camera"] != "on":
        if location == "unavailable":
            return "location_unavailable"
        return "location_only" if location == "on" else "opened"
    if state["microphone"] in ("busy", "muted"):
        return "microphone_busy"
    if state["microphone"] == "refused":
        return "microphone_blocked"
    return "video_and_location" if location == "on" else "video_only"


def caller_summary(
    mode: str,
    opened: bool,
    state: CallerState | None,
    link_refused: bool = False,
    stopped: bool = False,
) -> str:
    return LINES[summary_key(mode, opened, state, link_refused, stopped)]
