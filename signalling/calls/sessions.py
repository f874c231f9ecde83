"""A call session as the state store keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from recorder.events import BailCheck, CallerDevice, RequiredPlace
from signalling.calls.caller_state import CallerState
from signalling.calls.invites import SessionMode
from signalling.calls.records import Record

SessionState = Literal["link_sent", "opened", "connecting", "live", "reconnecting", "ended"]
LIVE_STATES: frozenset[str] = frozenset({"opened", "connecting", "live", "reconnecting"})


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class CallSession(Record):
    """Everything about a session but its trail; the phone number stays in full only here."""

    id: str
    incident_ref: str
    phone: str
    mode: SessionMode  # the invite type (calls.invites)
    state: SessionState
    created_at: datetime
    created_by: str
    token_id: str
    link_expires_at: datetime
    opened_at: datetime | None = None
    consent_at: datetime | None = None
    consent_version: str | None = None
    language: str | None = None  # the handler's choice for the caller page and SMS
    consent_language: str | None = None  # what the caller's page showed when they agreed
    ended_at: datetime | None = None
    ended_by: str | None = None
    sms_status: str = "pending"
    sms_error: str | None = None
    codec: str | None = None
    rejected_fixes: int = 0
    caller_device: CallerDevice | None = None  # at link open, then at consent
    caller_state: CallerState | None = None  # as the caller's page last reported it
    caller_stopped: bool = False  # the caller pressed Stop (caller_state.stopped_sharing)
    link_refused: str | None = None  # why a link for this session was refused (till resent)
    silent: bool = False  # silent mode (chat.py): the caller cannot talk
    microphone_request: datetime | None = None  # a call handler asked to use the microphone
    # A bail check's place (calls.bail) and its last check; a screening appointment's window.
    required_place: RequiredPlace | None = None
    bail_check: BailCheck | None = None
    appointment_at: datetime | None = None
    appointment_ends_at: datetime | None = None
