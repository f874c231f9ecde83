"""Request and response bodies of the JSON API (validated; also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from signalling.calls.caller_state import Camera, Location, Microphone, Network, Page
from signalling.calls.chat import ChatRecord
from signalling.calls.feed import ConsoleSession, OfficerSession
from signalling.calls.files import SessionFile, StillsState
from signalling.calls.invites import SessionMode
from signalling.calls.shares import ShareJson
from signalling.languages import known_language

# A caller-page language: one there is a catalogue for (GET /api/config lists them).
LanguageCode = Annotated[str, Field(max_length=16), AfterValidator(known_language)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class OperatorView(BaseModel):
    username: str
    roles: list[str]
    allowed: list[str] = Field(
        description="The routes these roles may call, 'METHOD /path' as in the permission table"
    )


class AccountView(BaseModel):
    username: str
    roles: list[str]
    disabled: bool
    created_at: str | None = Field(description="When the account was stored (none if configured)")


class AccountList(BaseModel):
    accounts: list[AccountView]


class CreateSessionRequest(Strict):
    phone: str = Field(
        min_length=3, max_length=32, description="Caller's mobile; UK forms accepted"
    )
    incident_ref: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 /_.:-]*$",
        description="CAD or incident reference",
    )
    mode: SessionMode = Field(default="video", description="The invite type")
    place: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Bail check: where the person must be: 'lat, lon', an OS grid reference "
        "or (with a geocoder configured) an address",
    )
    tolerance_m: float | None = Field(
        default=None, gt=0, le=10_000, description="Bail check: how far from it counts as there"
    )
    appointment_at: AwareDatetime | None = Field(
        default=None, description="Screening appointment: when the link opens (with a zone)"
    )
    window_minutes: int = Field(
        default=60, ge=5, le=24 * 60, description="Screening: how long it may then be opened"
    )
    language: LanguageCode | None = Field(
        default=None,
        description="The caller page's and the SMS's language; none: the caller's browser's",
    )


class SessionList(BaseModel):
    sessions: list[ConsoleSession]


class SessionDescription(Strict):
    sdp: str = Field(min_length=10, max_length=32_000)
    type: Literal["offer"]


class CallerOffer(SessionDescription):
    consent_version: str = Field(default="v1", max_length=16)
    language: LanguageCode | None = Field(
        default=None, description="The language the page showed when the caller agreed"
    )


class CallerStateReport(Strict):
    """The caller's page, whole, whenever any part of it changes (as on the data channel)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["caller_state"]
    camera: Camera = Field(description="'lost': the track ended; 'off': not asked")
    microphone: Microphone = Field(description="'busy': taken by the phone call")
    location: Location
    page: Page
    network: Network
    webrtc: bool = Field(description="The browser has WebRTC")
    declined: bool = Field(description="The caller pressed 'No thanks'")


class CallerFix(Strict):
    """One location fix, exactly as the page sends it on the data channel (milliseconds)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["fix"]
    lat: float
    lon: float
    accuracy: float | None = Field(description="Metres")
    timestamp: float = Field(description="The phone's clock, milliseconds since the epoch")
    altitude: float | None = None
    altitude_accuracy: float | None = None
    heading: float | None = None
    speed: float | None = None


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"]


class IceServerView(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceConfig(BaseModel):
    ice_servers: list[IceServerView] = Field(
        description="Static ICE servers, then TURN with a credential minted for this peer"
    )
    ice_transport_policy: Literal["all", "relay"] = Field(
        description="The RTCPeerConnection's iceTransportPolicy ('relay': TURN only)"
    )


class CallerConfig(IceConfig):
    mode: str = Field(description="What the page shares: 'video' (and location) or 'location'")
    invite: SessionMode = Field(description="The invite type")
    uploads_first: bool = Field(description="Offer photos and video before live video")
    codec: str | None
    language: str | None = Field(
        description="The handler's choice of language (it wins over the browser's); none: "
        "the caller's browser decides"
    )


class ConsoleConfig(BaseModel):
    tile_url: str
    tile_attribution: str
    force_name: str
    fix_stale_s: int = Field(description="A last fix older than this many seconds is stale")


class LanguageView(BaseModel):
    code: str = Field(description="The catalogue's name: web_client/static/i18n/<code>.json")
    name: str = Field(description="In its own words ('Cymraeg')")


class ConsoleSetup(ConsoleConfig):
    """The console's own configuration: the send form's languages too."""

    languages: list[LanguageView]
    default_language: str


class SsoConfig(BaseModel):
    enabled: bool
    provider: str | None = Field(description="Named on the sign-in button")


class SmsMessageView(BaseModel):
    session_id: str
    to_masked: str
    text: str
    sent_at: str


class SmsOutbox(BaseModel):
    messages: list[SmsMessageView]


class Trail(BaseModel):
    fixes: list[dict[str, Any]]


class RecordingPart(BaseModel):
    url: str
    content_type: str
    duration_s: float
    first_frame_wall_clock: float | None


class RecordingView(BaseModel):
    session_id: str
    status: str
    incident_ref: str | None
    mode: str | None = Field(description="The invite type (video, location, bail_check...)")
    started_at: str
    duration_s: float
    media_seconds: float
    codecs: list[str]
    fix_count: int
    segments: list[dict[str, Any]]
    parts: list[RecordingPart]
    trail_url: str
    timeline_url: str
    bundle_url: str


class RecordingList(BaseModel):
    recordings: list[RecordingView]


class ExportBody(Strict):
    """Either session_ids, or a phone number to export every recording made for it."""

    session_ids: list[str] = Field(default_factory=list, max_length=500)
    phone: str | None = None
    recipient: str = Field(min_length=1, max_length=200)
    purpose: str = Field(min_length=1, max_length=500)
    derivative_ids: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Finished redacted copies or clips (yours) of the exported sessions",
    )

    @model_validator(mode="after")
    def one_selection(self) -> ExportBody:
        if bool(self.session_ids) == bool(self.phone):
            raise ValueError("give either session_ids or phone")
        return self


class BoxBody(Strict):
    """A region at one moment (checked by recorder.redaction.Plan: 400 naming the box)."""

    t: float = Field(description="Seconds on the session's timeline")
    x: float = Field(description="Left edge, a fraction of the picture's width (0..1)")
    y: float = Field(description="Top edge, a fraction of the picture's height (0..1)")
    w: float = Field(description="Width, a fraction of the picture's width")
    h: float = Field(description="Height, a fraction of the picture's height")


class TrackBody(Strict):
    """A region followed over time: linear between keyframes; one keyframe holds throughout."""

    label: str = Field(default="region", max_length=64)
    keyframes: list[BoxBody] = Field(max_length=5000)


class MuteBody(Strict):
    start_s: float
    end_s: float


class RangeBody(Strict):
    """A time range of the session's timeline; the end of the recording if no end_s."""

    start_s: float = 0.0
    end_s: float | None = None


class FacesRequest(RangeBody):
    every_s: float = Field(default=0.5, ge=0.1, le=10, description="Sample a frame this often")


class FacesFound(BaseModel):
    tracks: list[TrackBody]


class RedactionRequest(RangeBody):
    tracks: list[TrackBody] = Field(default_factory=list, max_length=200)
    mutes: list[MuteBody] = Field(default_factory=list, max_length=500)
    reason: str = Field(default="", max_length=1000, description="Why (required; in the log)")


class ClipRequest(RangeBody):
    reason: str = Field(default="", max_length=1000, description="Why (required; in the log)")


class AuditNode(BaseModel):
    """One worker's trail in a search: each worker chains its own (signalling.cluster)."""

    node: str
    answered: bool  # False: the worker did not answer (its records are missing)
    chain_intact: bool | None
    first_broken_seq: int | None


class AuditSearch(BaseModel):
    records: list[dict[str, Any]]  # from every worker, oldest first, each naming its ``node``
    chain_intact: bool  # every trail that answered
    first_broken_seq: int | None  # in this worker's trail
    nodes: list[AuditNode]


class ShareRequest(Strict):
    """Share with an officer's account (``username``), or make an officer link."""

    kind: Literal["account", "link"]
    username: str | None = Field(default=None, min_length=1, max_length=64)
    label: str = Field(
        default="officer link",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 /_.:-]*$",
        description="Who holds the link, e.g. a vehicle's call sign",
    )
    minutes: int | None = Field(
        default=None, ge=1, le=24 * 60, description="Link life; the configured default if unset"
    )

    @model_validator(mode="after")
    def username_for_accounts(self) -> ShareRequest:
        if self.kind == "account" and self.username is None:
            raise ValueError("an account share needs the officer's username")
        return self


class ShareList(BaseModel):
    shares: list[ShareJson]


class OfficerShareView(ConsoleConfig, IceConfig):
    share_id: str
    label: str
    expires_at: str | None
    server_time: str
    session: OfficerSession


# -- chat and silent mode (signalling/calls/chat.py) --------------------------------------------


class ChatSend(Strict):
    """A chat message; its limits (length, control characters, rate) are checked by the chat
    domain, whose refusal names the limit (``limit``)."""

    text: str = Field(max_length=20_000)
    language: str | None = Field(
        default=None, max_length=35, description="The sender page's language (the caller's)"
    )


class ChatReceipts(Strict):
    message_ids: list[str] = Field(min_length=1, max_length=100)
    receipt: Literal["delivered", "read"]


class SilentSwitch(Strict):
    on: bool


class ChatList(BaseModel):
    messages: list[ChatRecord]
    phrases: list[str] = Field(description="Canned phrases for the call handler")
    max_chars: int


# -- files from the caller's phone and stills (signalling/calls/uploads.py, caller_files.py) ---


class UploadStart(Strict):
    """A file the caller's page is about to send; its type is checked by its bytes."""

    filename: str = Field(default="", max_length=255, description="The phone's name for it")
    size: int = Field(gt=0, description="Bytes")
    origin: Literal["gallery", "camera", "requested", "low_bandwidth"] = "gallery"


class UploadStatus(BaseModel):
    """How much of an upload the server holds: the page resumes from ``received``. ``file``
    is set once the whole file is in and kept in the evidence."""

    upload_id: str
    size: int
    received: int
    chunk_max: int = Field(description="Most bytes one PUT may carry")
    file: SessionFile | None = None


class StillsSwitch(Strict):
    on: bool
    reason: str = Field(min_length=1, max_length=120)


class StillsPace(BaseModel):
    interval_s: float = Field(description="Send a still this often while stills replace video")


class FileList(BaseModel):
    files: list[SessionFile]
    stills: StillsState | None = Field(description="The caller's page sends stills, not video")
    stills_interval_s: float
