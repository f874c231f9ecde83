"""What a session's live feed carries, as typed records.

The call domain publishes ``FeedEvent``s on the state store (between processes, over Redis
when there are several); the web routes forward them on the console's WebSocket
(``ConsoleMessage``) and, reworded for an officer link, on its own (``OfficerMessage``).
Every message is a JSON object named by its ``type`` key. ``ConsoleSession`` is the session
as the JSON API shows it (``SessionService.view``; the OpenAPI document is built from it).
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.events import Appointment, BailCheck, RequiredPlace
from signalling.calls.caller_state import CallerState
from signalling.calls.chat import ChatRecord
from signalling.calls.files import SessionFile
from signalling.calls.geocoding import PlaceRecord
from signalling.calls.invites import Media, SessionMode, Tracking, invite
from signalling.calls.location import FixRecord
from signalling.calls.sessions import CallSession, SessionState
from streamserver.quality import NetworkQuality

# -- the session, as the console and an officer link see it ----------------------------------


class SmsDelivery(TypedDict):
    status: str  # pending, sent, failed
    error: str | None


class RecordingHealth(TypedDict):
    state: Literal["idle", "recording", "failed"]
    cause: str | None  # why it failed, in words: "disk full"


class CallerBrowser(TypedDict):
    """The caller's browser and device in words, from its user agent (None where unknown)."""

    browser: str | None  # e.g. "Mobile Safari 17.5"
    device: str | None  # e.g. "iPhone (iOS 17.5)"


class InviteView(TypedDict):
    """The invite type's words and rules, and what its session was given."""

    label: str  # "Bail or court-order check"
    media: Media
    tracking: Tracking
    required_place: RequiredPlace | None
    bail_check: BailCheck | None  # the last fix judged against the required place
    appointment: Appointment | None


def invite_view(session: CallSession) -> InviteView:
    kind = invite(session.mode)
    starts, ends = session.appointment_at, session.appointment_ends_at
    return {
        "label": kind.label,
        "media": kind.media,
        "tracking": kind.tracking,
        "required_place": session.required_place,
        "bail_check": session.bail_check,
        "appointment": (
            {"starts_at": starts.isoformat(), "ends_at": ends.isoformat()}
            if starts is not None and ends is not None
            else None
        ),
    }


class ConsoleSession(TypedDict):
    """No full phone number, no token: what any console user may see of a session."""

    id: str
    incident_ref: str
    mode: SessionMode  # the invite type
    invite: InviteView
    state: SessionState
    created_at: str
    created_by: str
    opened_at: str | None
    consent_at: str | None
    consent_version: str | None
    language: str | None  # the handler's choice for the caller page and SMS
    consent_language: str | None  # the language the caller's page showed at consent
    ended_at: str | None
    ended_by: str | None
    sms_status: str
    sms_error: str | None
    codec: str | None
    rejected_fixes: int
    recording: RecordingHealth
    phone_masked: str
    fix_count: int
    last_fix: FixRecord | None
    viewers: int
    sms: SmsDelivery
    caller_state: CallerState | None  # as the caller's page last reported it
    caller_summary: str  # the one line the call handler acts on (caller_state.LINES)
    caller_device: CallerBrowser | None  # from the page's user agent, once the link is opened
    network: NetworkQuality | None  # the caller's connection as this node receives it
    silent: bool  # silent mode: the caller cannot talk (chat in front, microphone off)
    microphone_request: str | None  # when a call handler last asked to use the microphone


class OfficerSession(TypedDict):
    """What an officer link shows of a session: no phone number, no console detail."""

    id: str
    incident_ref: str
    mode: SessionMode
    media: Media  # what the caller's page shares: "video" or "location"
    state: SessionState
    last_fix: FixRecord | None
    silent: bool  # silent mode: the caller cannot talk


# -- the events the state store carries --------------------------------------------------------


class FixMessage(TypedDict):
    """A new fix from the caller (on both WebSockets as it is)."""

    type: Literal["fix"]
    fix: FixRecord


class PlaceMessage(TypedDict):
    """A fix's what3words and address, found after the fix (``received_at`` names it)."""

    type: Literal["place"]
    place: PlaceRecord


class StateMessage(TypedDict):
    """The session changed (state, SMS delivery, recording, viewers)."""

    type: Literal["state"]
    session: ConsoleSession


class ChatFeedMessage(TypedDict):
    """A chat message, new or with its delivery, read state or translation changed."""

    type: Literal["chat"]
    message: ChatRecord


class FileMessage(TypedDict):
    """A photo, video or still from the caller, or a snapshot, now in the bundle."""

    type: Literal["file"]
    file: SessionFile


class StillsMessage(TypedDict):
    """The caller's page sends stills every ``interval_s`` instead of video (or stopped)."""

    type: Literal["stills"]
    on: bool
    reason: str
    interval_s: float


class ShareEnded(TypedDict):
    """A share was withdrawn: its viewers on every node are cut off."""

    type: Literal["share_ended"]
    share_id: str
    reason: Literal["withdrawn"]


FeedEvent = (
    FixMessage
    | PlaceMessage
    | StateMessage
    | ChatFeedMessage
    | FileMessage
    | StillsMessage
    | ShareEnded
)

# -- the WebSockets ----------------------------------------------------------------------------


class TrailMessage(TypedDict):
    """The first message on either WebSocket: the trail so far."""

    type: Literal["trail"]
    fixes: list[FixRecord]


ConsoleMessage = TrailMessage | FeedEvent


class OfficerState(TypedDict):
    type: Literal["state"]
    session: OfficerSession


class BearingMessage(TypedDict):
    """From the officer's tablet to the caller, after either end moves."""

    type: Literal["bearing"]
    distance_m: float
    bearing_deg: float
    officer_accuracy_m: float
    caller_accuracy_m: float
    caller_fix_at: str


class ErrorMessage(TypedDict):
    """The tablet's position was refused; the feed goes on."""

    type: Literal["error"]
    error: str


class AccessEnded(TypedDict):
    """The link no longer gives access (the socket closes next); why, for the officer."""

    type: Literal["access_ended"]
    reason: str


OfficerMessage = (
    TrailMessage
    | FixMessage
    | PlaceMessage
    | ChatFeedMessage
    | OfficerState
    | BearingMessage
    | ErrorMessage
    | AccessEnded
)
