"""The vocabulary of ``events.jsonl``: one record a line, named by its ``event`` key.

Every record has ``event`` (one of ``EVENT_NAMES``) and ``at`` (ISO 8601, UTC, the server's
clock when it happened). The TypedDicts below are the complete list of what a bundle's
events can say; readers (catalogue, verification, the benchmark) use the same names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict, get_args, get_type_hints

from typing_extensions import TypedDict as SchemaTypedDict  # pydantic documents it (< 3.12)

from streamserver.session import RtcpSenderReport


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def iso_at(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


# -- the call, as the signalling service records it ----------------------------------------


class RequiredPlace(SchemaTypedDict):
    """Where a bail or court-order check requires the person to be (also on the console)."""

    given: str  # as the handler typed it: "51.5, -0.12", "TQ 30045 80195" or an address
    lat: float
    lon: float
    tolerance_m: float
    grid_ref: str | None  # 10-figure, when inside the National Grid
    address: str | None  # the geocoder's answer, when an address was given


class Appointment(SchemaTypedDict):
    """A screening appointment: the link opens at ``starts_at`` and not after ``ends_at``."""

    starts_at: str
    ends_at: str


class SessionCreated(TypedDict):
    event: Literal["session_created"]
    at: str
    by: str
    incident_ref: str
    mode: str  # the invite type (signalling.calls.invites)
    token_id: str
    phone: str  # the evidence (not the logs) keeps it: right-of-access searches need it
    required_place: NotRequired[RequiredPlace]  # a bail or court-order check
    appointment: NotRequired[Appointment]  # a screening appointment
    language: NotRequired[str]  # the handler's choice for the caller page and SMS ("cy")


class LinkSent(TypedDict):
    event: Literal["link_sent"]
    at: str


class LinkNotSent(TypedDict):
    event: Literal["link_not_sent"]
    at: str
    reason: str


class LinkResent(TypedDict):
    event: Literal["link_resent"]
    at: str
    by: str
    token_id: str


class CallerDevice(TypedDict):
    """The caller's browser as its user agent names it (also kept in the manifest)."""

    user_agent: str
    browser: str | None
    device: str | None


class LinkOpened(CallerDevice):
    event: Literal["link_opened"]
    at: str


class ConsentGiven(CallerDevice):
    event: Literal["consent_given"]
    at: str
    consent_version: str
    language: NotRequired[str]  # the language of the words the caller agreed to


class MediaStateChanged(TypedDict):
    event: Literal["connecting", "live", "reconnecting"]
    at: str


class MediaGapStarted(TypedDict):
    """No media from a caller who was sending it for more than 2 s (the session shows
    "reconnecting"); ``started_at`` is the last frame before it."""

    event: Literal["media_gap_started"]
    at: str
    started_at: str
    part: int


class MediaGapEnded(TypedDict):
    """The gap's end: the first frame after it (``resumed``), or the media ended during
    it (the call ended, or the caller came back without media). Also a ``gap`` entry in
    the chain, so in the manifest's ``gaps``."""

    event: Literal["media_gap_ended"]
    at: str
    started_at: str
    ended_at: str
    seconds: float
    resumed: bool
    part: int  # the caller connection (recording part) when it ended


class ViewerJoined(TypedDict):
    event: Literal["viewer_joined"]
    at: str
    by: str


class ShareCreated(TypedDict):
    event: Literal["share_created"]
    at: str
    share_id: str
    kind: str
    recipient: str
    by: str
    expires_at: str | None


class ShareWithdrawn(TypedDict):
    event: Literal["share_withdrawn"]
    at: str
    share_id: str
    kind: str
    recipient: str
    by: str


class CallerStateChanged(TypedDict):
    """The caller's page reported a change: what it shares, and the line the console showed."""

    event: Literal["caller_state"]
    at: str
    camera: str  # on, refused, unavailable, lost, muted, off
    microphone: str  # on, refused, busy, muted, off
    location: str  # on, refused, unavailable, off
    page: str  # visible, hidden, frozen
    network: str  # online, offline
    webrtc: bool
    declined: bool
    summary: str


class LinkRefused(TypedDict):
    """A link for this session was tapped and refused (expired, replaced, not opened in time)."""

    event: Literal["link_refused"]
    at: str
    reason: str


class Ended(TypedDict):
    event: Literal["ended"]
    at: str
    by: str
    session: dict[str, Any]  # the session record as it stood at the end


# -- the recording, as the recorder records it ----------------------------------------------


class RecordingPartStarted(TypedDict):
    event: Literal["recording_part_started"]
    at: str
    part: str
    first_frame_wall_clock: float | None
    video_codec: str | None
    width: int
    height: int


class RecordingPartFinished(TypedDict):
    event: Literal["recording_part_finished"]
    at: str
    part: str
    frames: int
    first_frame_wall_clock: float | None
    last_frame_wall_clock: float | None
    reason: str


class MediaLoss(TypedDict):
    """Packets of the caller's media never came (lost on the way and not resent in time, or
    thrown away when the receive buffer overflowed): each of ``frames`` (indexes from 0 in the
    part's ``kind`` track) holds what arrived, and a frame just before it may be short or
    missing (streamserver.reassembly.ReceivedFrame). One event per kind and written batch."""

    event: Literal["media_loss"]
    at: str
    part: str
    kind: str
    frames: list[int]
    time_s: list[float]  # of each, in the part (seconds, as Matroska keeps them: to the ms)


class RecordingOverrun(TypedDict):
    event: Literal["recording_overrun"]
    at: str
    kind: str
    frames_dropped_total: int
    resumed_at_pts: int | None
    resumed_at_arrival: float | None


class KindTotals(TypedDict):
    taken: int  # frames the recorder took from the relay
    dropped: int  # dropped by the relay (the recorder fell behind, or before a keyframe)
    written: int
    skipped: int  # not written: waiting for a keyframe to start a part
    lost: int  # arrived while recording had failed (a full disk, a dead folder)


class RecordingTotals(TypedDict):
    event: Literal["recording_totals"]
    at: str
    video: KindTotals
    audio: KindTotals


class RecordingFailed(TypedDict):
    """Writing stopped (a full disk): the part is kept as incomplete, frames are lost until
    ``recording_resumed``."""

    event: Literal["recording_failed"]
    at: str
    cause: str
    part: str | None


class RecordingResumed(TypedDict):
    event: Literal["recording_resumed"]
    at: str
    cause: str
    failed_at: str
    frames_lost: int


class DiskSpaceLow(TypedDict):
    event: Literal["disk_space_low", "disk_space_recovered"]
    at: str
    free_bytes: int
    threshold_bytes: int


class TornInfo(TypedDict):
    name: str
    sha256: str
    bytes: int


class RecordingPartUnrecoverable(TypedDict):
    event: Literal["recording_part_unrecoverable"]
    at: str
    part: str
    torn: TornInfo


class RecorderRecovered(TypedDict):
    event: Literal["recorder_recovered"]
    at: str
    recovered_parts: list[str]
    last_frame_wall_clock: float | None


class RecordingMoved(TypedDict):
    """This node took the session over (its owner died or was drained) and continues the
    same session's evidence: the first event of this node's contribution to the bundle."""

    event: Literal["recording_moved"]
    at: str
    node_id: str  # this node, whose parts follow
    from_node: str | None  # the node that recorded before, when known
    reason: str  # "failover", "drain"...: the cluster's word for why
    # Wall clock (Unix seconds) of the last media the previous owner is known to have had,
    # and the seconds from then to this event: the gap the move left (None if unknown).
    last_seen_wall_clock: float | None
    gap_s: float | None


class RecordingPartSalvaged(TypedDict):
    """An incomplete part (a crash or a failed write) copied up to its last whole frame."""

    event: Literal["recording_part_salvaged"]
    at: str
    part: str
    cause: str
    frames: int
    torn: TornInfo


# -- files from the phone and stills (issue 14) ---------------------------------------------


class PhotoExif(TypedDict, total=False):
    """A few EXIF fields of a photo, as read from the original (which keeps all of them)."""

    date_time_original: str
    make: str
    model: str
    gps_lat: float
    gps_lon: float


class CallerFile(TypedDict):
    """A file the caller sent, kept byte for byte as an original (``name`` in the bundle)."""

    event: Literal["caller_file"]
    at: str
    name: str
    sha256: str
    size: int
    content_type: str
    kind: Literal["photo", "video", "still"]
    origin: Literal["gallery", "camera", "requested", "low_bandwidth"]
    exif: PhotoExif | None


class Snapshot(TypedDict):
    """A handler's still of the live picture: the keyframe after the request, decoded to a
    JPEG derivative (``name``) linked to the part and frame it came from. ``part_sha256`` is
    the part's hash when it was already closed, else null (the part is chained when it
    closes); ``frame_sha256`` is the hash of the encoded keyframe as the phone sent it (the
    relay's frame, before muxing), with ``frame_pts`` its place in the track."""

    event: Literal["snapshot"]
    at: str
    by: str
    name: str
    sha256: str
    part: str | None
    part_sha256: str | None
    frame_pts: int
    frame_sha256: str


class StillsFallback(TypedDict):
    """The caller's page sends stills over HTTPS instead of video (or stops doing so)."""

    event: Literal["stills_fallback"]
    at: str
    on: bool
    reason: str


# -- chat and silent mode (issue 14) ---------------------------------------------------------


class ChatTranslation(TypedDict):
    """A machine translation of a chat message (LibreTranslate), kept beside the original."""

    language: str  # the translation's language, e.g. "en"
    text: str


class ChatMessage(TypedDict):
    """A chat message as sent: who (``by`` names the call handler, null for the caller),
    the text exactly as accepted, the sender's page language and any translation."""

    event: Literal["chat_message"]
    at: str
    message_id: str
    sender: Literal["caller", "handler"]
    by: str | None
    text: str
    language: str | None
    translation: ChatTranslation | None


class ChatRead(TypedDict):
    """Messages shown on the other side's page while it was visible."""

    event: Literal["chat_read"]
    at: str
    message_ids: list[str]
    reader: Literal["caller", "handler"]
    by: str | None


class SilentMode(TypedDict):
    """Silent mode switched on or off, by the caller ("caller") or a call handler."""

    event: Literal["silent_mode"]
    at: str
    on: bool
    by: str


# -- invite types (issue 14) ---------------------------------------------------------------


class CheckedFix(SchemaTypedDict):
    """The fix a bail check judged (the whole fix is in location.jsonl)."""

    lat: float
    lon: float
    accuracy: float
    device_time: str
    received_at: str


class BailCheck(SchemaTypedDict):  # also on the console (ConsoleSession.bail_check)
    """A bail or court-order check's result: at the first fix, then whenever the verdict
    changes. "within": the fix's accuracy circle lies inside the tolerance; "outside": wholly
    beyond it; "uncertain": it overlaps the boundary."""

    event: Literal["bail_check"]
    at: str
    required_place: RequiredPlace
    tolerance_m: float
    fix: CheckedFix
    distance_m: float
    accuracy_m: float
    verdict: Literal["within", "outside", "uncertain"]


EvidenceEvent = (
    SessionCreated
    | LinkSent
    | LinkNotSent
    | LinkResent
    | LinkOpened
    | ConsentGiven
    | MediaStateChanged
    | MediaGapStarted
    | MediaGapEnded
    | ViewerJoined
    | ShareCreated
    | ShareWithdrawn
    | CallerStateChanged
    | LinkRefused
    | Ended
    | RecordingPartStarted
    | RecordingPartFinished
    | MediaLoss
    | RecordingOverrun
    | RecordingTotals
    | RecordingFailed
    | RecordingResumed
    | DiskSpaceLow
    | RecordingPartUnrecoverable
    | RecorderRecovered
    | RecordingMoved
    | RecordingPartSalvaged
    | CallerFile
    | Snapshot
    | StillsFallback
    | ChatMessage
    | ChatRead
    | SilentMode
    | BailCheck
    | RtcpSenderReport
)


def _names() -> frozenset[str]:
    names: set[str] = set()
    for record in get_args(EvidenceEvent):
        names.update(get_args(get_type_hints(record)["event"]))
    return frozenset(names)


EVENT_NAMES: frozenset[str] = _names()
