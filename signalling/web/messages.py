"""The messages that are not HTTP requests, as the OpenAPI document describes them: the console's
and the officer link's WebSockets and the caller's WebRTC data channel, each way.

Each direction is the union of the TypedDicts the code sends or parses (``calls.feed`` for the
feeds); the few that were plain dicts are typed here. Every message is a JSON object named by
its ``type``.
"""

from __future__ import annotations

from typing import Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from signalling.calls.caller_files import StillsAdvice
from signalling.calls.caller_state import CallerStateMessage
from signalling.calls.chat import CallerMessage, Receipt
from signalling.calls.feed import ConsoleMessage, OfficerMessage
from signalling.calls.location import CallerFixMessage, FixReading
from signalling.web.openapi import Channel


class OfficerAuth(TypedDict):
    """The first message on an officer link's WebSocket (browsers cannot set its headers)."""

    type: Literal["auth"]
    token: str


class PositionMessage(FixReading):
    """The officer's tablet's position: the feed answers with distance and bearing."""

    type: Literal["position"]


class CallerEnded(TypedDict):
    """The call handler ended the session: the page says so and stops."""

    type: Literal["ended"]


class PhotoRequest(TypedDict):
    """The call handler asks the caller for a photo."""

    type: Literal["photo_request"]


class ChatFromCaller(TypedDict):
    """A chat message the caller typed (refused whole, with ``chat_error``, past a limit)."""

    type: Literal["chat"]
    text: str
    language: str | None  # the page's language, e.g. "cy"


class ChatReceiptFromCaller(TypedDict):
    """The caller's page has the handler's messages (``delivered``) or showed them (``read``)."""

    type: Literal["chat_receipt"]
    message_ids: list[str]
    receipt: Receipt


class ChatSync(TypedDict):
    """The page asks for the whole conversation (answered with ``chat_state``)."""

    type: Literal["chat_sync"]
    language: str | None


class SilentFromCaller(TypedDict):
    """The caller turns silent mode on or off (they cannot talk)."""

    type: Literal["silent"]
    on: bool


ToOfficer = OfficerMessage
FromOfficer = OfficerAuth | PositionMessage
ToCaller = CallerEnded | PhotoRequest | StillsAdvice | CallerMessage
FromCaller = (
    CallerFixMessage
    | CallerStateMessage
    | ChatFromCaller
    | ChatReceiptFromCaller
    | ChatSync
    | SilentFromCaller
)

CHANNELS: tuple[Channel, ...] = (
    Channel(
        "console",
        "The console's live feed of one session: the trail first, then every feed event",
        "/api/sessions/{session_id}/ws",
        ("ConsoleMessage", ConsoleMessage),
        None,
    ),
    Channel(
        "officer",
        "An officer link's feed: auth first, then the trail, fixes, state, and after each "
        "position the distance and bearing to the caller",
        "/api/officer/ws",
        ("OfficerMessage", ToOfficer),
        ("FromOfficer", FromOfficer),
    ),
    Channel(
        "caller",
        "The caller's WebRTC data channel (labelled 'location'); fixes and state also go by "
        "POST /api/caller/fixes and /api/caller/state where the browser has no WebRTC",
        None,
        ("ToCaller", ToCaller),
        ("FromCaller", FromCaller),
    ),
)
