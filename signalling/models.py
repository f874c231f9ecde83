"""Request and response bodies of the JSON API (validated; also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(Strict):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class OperatorView(BaseModel):
    username: str
    roles: list[str]


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
    mode: Literal["video", "location"] = "video"


class SmsStatus(BaseModel):
    status: str
    error: str | None


class SessionView(BaseModel):
    id: str
    incident_ref: str
    phone_masked: str
    mode: str
    state: str
    created_at: str
    created_by: str
    opened_at: str | None
    consent_at: str | None
    consent_version: str | None
    ended_at: str | None
    ended_by: str | None
    codec: str | None
    fix_count: int
    rejected_fixes: int
    last_fix: dict[str, Any] | None
    viewers: int
    sms: SmsStatus


class SessionList(BaseModel):
    sessions: list[SessionView]


class SessionDescription(Strict):
    sdp: str = Field(min_length=10, max_length=32_000)
    type: Literal["offer"]


class CallerOffer(SessionDescription):
    consent_version: str = Field(default="v1", max_length=16)


class Answer(BaseModel):
    sdp: str
    type: Literal["answer"]


class IceServerView(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class IceConfig(BaseModel):
    ice_servers: list[IceServerView]


class CallerConfig(IceConfig):
    mode: str
    codec: str | None


class ConsoleConfig(BaseModel):
    tile_url: str
    tile_attribution: str
    force_name: str


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


class RecordingView(BaseModel):
    session_id: str
    incident_ref: str | None
    started_at: str | None
    ended_at: str | None
    duration_s: float
    parts: list[RecordingPart]
    trail_url: str


class RecordingList(BaseModel):
    recordings: list[RecordingView]


class AuditSearch(BaseModel):
    records: list[dict[str, Any]]
    chain_intact: bool
    first_broken_seq: int | None
