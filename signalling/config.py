"""All of SceneLink's configuration: one typed object, from the environment and an optional file.

Every setting has an embedded default so that ``scenelink serve`` runs on one machine with
no configuration at all; a default that a lower layer also needs is that layer's constant
(``recorder.defaults``, ``streamserver.relay``), named here rather than restated. What the
server keeps in its data folder is named once too: ``DataFolder``. Environment variables are
``SCENELINK_<NAME>`` (``REDIS_URL`` is also honoured as is); a TOML file named by
``SCENELINK_CONFIG`` supplies the same keys. Environment wins over the file.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from recorder import defaults
from recorder.layout import DataLayout
from recorder.nodes import load_or_create_node_id
from signalling.calls.invites import INVITES, SessionMode
from signalling.calls.links import LINK_ID_LENGTH
from signalling.languages import language_codes
from signalling.smstext import TYPICAL_PUBLIC_URL, septets, template_problem
from streamserver.relay import DEFAULT_QUEUE_SIZE

Role = Literal["call_handler", "officer", "investigator", "supervisor", "admin"]

# The default Welsh SMS, one per invite type; each fits one GSM 7-bit SMS (no circumflex).
WELSH_SMS: dict[SessionMode, str] = {
    "video": "{force}: fel y gofynnwyd ar eich galwad 999, tapiwch i rannu fideo a'ch "
    "lleoliad: {link}",
    "location": "{force}: fel y gofynnwyd ar eich galwad 999, tapiwch i rannu eich lleoliad: "
    "{link}",
    "bail_check": "{force}: fel y mae'ch mechniaeth neu orchymyn llys yn gofyn, rhannwch eich "
    "lleoliad: {link}",
    "screening": "{force}: ar amser eich apwyntiad, tapiwch i anfon lluniau neu fideo atom: {link}",
    "missing_person": "{force}: rydym eisiau gwybod eich bod yn ddiogel. Tapiwch i rannu'ch "
    "lleoliad: {link}",
}


@dataclass(frozen=True, slots=True)
class DataFolder(DataLayout):
    """Everything under the data folder: the recorder's (``recorder.layout``) and these::

    token.key          the key that signs officer links and console cookies
    accounts.json      operators' accounts (argon2 hashes)
    audit/audit.jsonl  this node's audit trail
    webhooks/deliveries.jsonl  every attempt to deliver an event to the event webhook
    uploads/           files the caller's page is still sending (never evidence; emptied at start)
    state.json         the embedded state store's sessions, links (hashes), trails, shares
                       and revocations, so that live sessions survive a restart (not with Redis)
    """

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def token_key(self) -> Path:
        return self.data_dir / "token.key"

    @property
    def accounts(self) -> Path:
        return self.data_dir / "accounts.json"

    @property
    def audit_trail(self) -> Path:
        return self.data_dir / "audit" / "audit.jsonl"

    @property
    def webhook_deliveries(self) -> Path:
        return self.data_dir / "webhooks" / "deliveries.jsonl"

    @property
    def upload_staging(self) -> Path:
        return self.data_dir / "uploads"


class OperatorAccount(BaseModel):
    """An individual account; shared logins are not supported by design."""

    username: str = Field(min_length=1, max_length=64)
    password: SecretStr
    roles: list[Role] = ["call_handler"]


class IceServer(BaseModel):
    urls: list[str]
    username: str | None = None
    credential: str | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCENELINK_", extra="forbid")

    host: str = "0.0.0.0"
    port: int = 8080
    public_url: str | None = Field(
        default=None,
        description="Base URL put in caller and officer links; unset, links are sent only "
        "from a console opened on a loopback host (development)",
    )
    trust_forwarded_proto: bool = Field(
        default=True, description="Honour X-Forwarded-Proto from a TLS-terminating proxy"
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None

    data_dir: Path = Path("scenelink-data")
    accounts_file: Path | None = Field(
        default=None,
        description="Operators' accounts; unset: <data dir>/accounts.json. `serve --workers` "
        "gives each worker its own data folder and this file of the parent's, so that every "
        "worker knows the same accounts",
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "SCENELINK_REDIS_URL")
    )
    # Workers and nodes (signalling/cluster): with Redis, each process is a worker that owns
    # whole sessions; requests for a session reach its owner through any worker.
    internal_url: str | None = Field(
        default=None,
        description="This worker's address for requests forwarded inside the cluster "
        "(e.g. http://10.0.0.5:8081); unset: http://127.0.0.1:<internal port>",
    )
    internal_port: int = Field(
        default=0,
        ge=0,
        description="Port of the internal listener for forwarded requests (0: the public port "
        "serves them; `serve --workers` gives each worker its own)",
    )
    cluster_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key that authenticates requests forwarded between workers (the "
        "token secret if unset)",
    )
    cluster_lease_s: float = Field(
        default=10.0,
        gt=0,
        description="How long a worker's registration and its sessions' ownership last "
        "without a heartbeat (renewed every third of it); a dead worker's sessions move then",
    )
    drain_s: float = Field(
        default=60.0,
        ge=0,
        description="On SIGTERM: how long live sessions may go on before they are handed to "
        "another worker (no new sessions meanwhile)",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Worker processes for `scenelink serve` (unset: one per core with Redis, "
        "one on embedded defaults)",
    )

    token_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key for officer links and console cookies; generated in data_dir if "
        "unset",
    )
    link_ttl_s: int = Field(
        default=30 * 60, gt=0, description="How long a link works until first use"
    )
    session_max_s: int = Field(default=4 * 3600, gt=0, description="Longest a session's link lives")
    console_login_ttl_s: int = Field(default=12 * 3600, gt=0)
    login_failures_per_address: int = Field(
        default=5, gt=0, description="Failed sign-ins from one address before it waits"
    )
    login_failures_per_account: int = Field(
        default=20,
        gt=0,
        description="Failed sign-ins for one account, from any address, before it waits",
    )
    login_window_s: float = Field(
        default=5 * 60, gt=0, description="How long a failed sign-in counts"
    )
    officer_link_ttl_s: int = Field(
        default=60 * 60,
        gt=0,
        description="Default life of an officer link; never beyond its session's",
    )

    operators: list[OperatorAccount] = Field(default_factory=list)

    force_name: str = "Police"
    default_language: str = Field(
        default="en",
        description="The caller page's language when neither the handler nor the caller's "
        "browser names one it has a catalogue for (web_client/static/i18n/<lang>.json)",
    )
    sms_provider: Literal["log", "notify", "sns", "webhook"] = Field(
        default="log", description="Who delivers caller links; 'log' keeps them on this machine"
    )
    # One SMS (160 GSM 7-bit characters) with the force's name and the longest link; checked
    # at start-up. The location-only wording must not promise video.
    sms_template: str = Field(
        default="{force}: as asked on your 999 call, tap to share video and your location "
        "with us: {link}",
        description="SMS for a video invite, with {force} and {link}",
    )
    sms_template_location: str = Field(
        default="{force}: as asked on your 999 call, tap to share your location with us: {link}",
        description="SMS for a location-only invite, with {force} and {link}",
    )
    sms_template_bail: str = Field(
        default="{force}: as your bail or court order requires, tap to share your location "
        "with us: {link}",
        description="SMS for a bail or court-order check, with {force} and {link}",
    )
    sms_template_screening: str = Field(
        default="{force}: for your appointment, at the agreed time tap to send us photos or "
        "video: {link}",
        description="SMS for a screening appointment, with {force} and {link}",
    )
    sms_template_missing: str = Field(
        default="{force}: we want to know you are safe. Please tap to share your location "
        "with us: {link}",
        description="SMS for a missing person (location until the handler stops)",
    )
    # The SMS in the caller's language (the handler's choice, else SCENELINK_DEFAULT_LANGUAGE),
    # by language and invite type; English, and any type a language leaves out, is the
    # wording above. Each must be one GSM 7-bit SMS too: Welsh is written without the
    # circumflex (ŵ, ŷ, â are not in GSM 03.38 and would make the message UCS-2, 70 characters).
    sms_templates: dict[str, dict[SessionMode, str]] = Field(
        default_factory=lambda: {"cy": dict(WELSH_SMS)},
        description="SMS wording per caller-page language and invite type, with {force} and "
        '{link}: {"cy": {"video": "...", "location": "..."}}',
    )
    tracking_max_days: float = Field(
        default=30,
        gt=0,
        description="A missing-person link works until the handler stops it; this is when a "
        "forgotten one stops (its hash must expire from the state store some day)",
    )
    sms_timeout_s: float = Field(default=10.0, gt=0, description="Deadline for one SMS request")
    notify_api_key: SecretStr | None = Field(default=None, description="GOV.UK Notify API key")
    notify_template_id: str | None = Field(
        default=None, description="Notify SMS template using ((message)) or ((force))/((link))"
    )
    notify_base_url: str = "https://api.notifications.service.gov.uk"
    sns_region: str | None = None
    sns_endpoint_url: str | None = None
    sns_sender_id: str | None = Field(
        default=None, max_length=11, description="Alphanumeric sender shown where supported"
    )
    sms_webhook_url: str | None = None
    sms_webhook_secret: SecretStr | None = Field(
        default=None, description="Key for the webhook's HMAC-SHA256 signature header"
    )

    # Events for other systems (signalling/webhooks.py): off unless a URL is set.
    webhook_url: str | None = Field(
        default=None, description="Where session events are POSTed, signed; none when unset"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="Key for the event webhook's HMAC-SHA256 signature header"
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, description="Deadline for one event delivery"
    )
    webhook_backoff_s: float = Field(
        default=1.0, gt=0, description="First wait before a failed delivery is tried again"
    )
    webhook_backoff_max_s: float = Field(
        default=300.0, gt=0, description="Longest wait between tries (the wait doubles)"
    )
    webhook_attempts: int = Field(
        default=10, ge=1, description="Tries of one event before it is given up (ERROR log)"
    )

    # Single sign-on for the console (OpenID Connect); off unless an issuer is set.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_provider_name: str = Field(default="single sign-on", description="Shown on the button")
    oidc_redirect_url: str | None = Field(
        default=None, description="Registered callback; <public URL>/api/oidc/callback if unset"
    )
    oidc_scopes: list[str] = Field(default_factory=lambda: ["openid", "profile"])
    oidc_role_claim: str = Field(default="groups", description="ID token claim naming groups")
    oidc_role_map: dict[str, list[Role]] = Field(
        default_factory=dict, description="Provider group or role -> SceneLink roles"
    )
    phone_region: str = Field(default="GB", description="Region for numbers written without +")

    ice_servers: list[IceServer] = Field(default_factory=list)
    # TURN with time-limited credentials (coturn's use-auth-secret / static-auth-secret):
    # each caller, viewer and this server is given its own username and password.
    turn_urls: list[str] = Field(
        default_factory=list,
        description="TURN servers, e.g. turn:turn.example:3478?transport=udp, "
        "turn:turn.example:3478?transport=tcp, turns:turn.example:443?transport=tcp",
    )
    turn_secret: SecretStr | None = Field(
        default=None, description="coturn's static-auth-secret; credentials are minted from it"
    )
    turn_ttl_s: int | None = Field(
        default=None,
        gt=0,
        description="Life of a minted TURN credential; the session's longest life if unset "
        "(coturn refuses to refresh an allocation once its credential has expired)",
    )
    ice_transport_policy: Literal["all", "relay"] = Field(
        default="all",
        description="'relay' makes the caller's and viewers' browsers use TURN only",
    )
    preferred_codec: Literal["H264", "VP8"] | None = Field(
        default=None,
        description="Video codec the caller's page puts first; None keeps the browser's",
    )
    relay_queue_size: int = Field(default=DEFAULT_QUEUE_SIZE, ge=8)

    # Evidence store (recorder/): S3 with Object Lock when a bucket is set, else a local folder.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    default_retention_days: int = Field(
        default=defaults.RETENTION_DAYS, gt=0, description="Until retention rules"
    )
    segment_seconds: float = Field(
        default=defaults.SEGMENT_SECONDS, gt=0.5, description="Evidence segment length"
    )
    signing_key_path: Path | None = Field(
        default=None, description="Ed25519 PEM key for manifests; generated in data_dir if unset"
    )
    handler_replay_hours: float = Field(
        default=24, gt=0, description="How long after a session its call handlers may replay it"
    )
    redaction_workers: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Redacted copies, clips and face proposals made at once (each takes about "
        "a core); more wait their turn",
    )
    keep_local_evidence: bool = Field(default=True, description="Keep spool copies after upload")
    evidence_low_space_mb: int = Field(
        default=defaults.LOW_SPACE_MB,
        ge=0,
        description="Warn (log, console, evidence event) when free space for evidence falls "
        "below this; a failed recording resumes only above it (0: no warning)",
    )
    fixity_interval_s: float = Field(default=defaults.FIXITY_INTERVAL_S, gt=0)
    node_name: str = Field(
        default_factory=socket.gethostname, description="This server in a cluster (audit keys)"
    )
    node_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
        description="This node in the evidence (its manifests, a continued session's part "
        "names, the store's <session>/nodes/<id>/); unset: made once, kept in <data dir>/node-id",
    )
    shared_spool: Path | None = Field(
        default=None,
        description="A folder every node mounts: each node's evidence spool is <it>/<node id>/, "
        "so another node can recover and upload a dead node's unfinished evidence",
    )
    # Operations (signalling/ops/): probes, metrics, logs.
    log_format: Literal["text", "json"] = Field(
        default="text", description="'json': one JSON object per log line, for a log shipper"
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="Bearer token that GET /metrics requires; metrics are off when unset",
    )
    ready_timeout_s: float = Field(
        default=2.0, gt=0, description="Deadline for each of /readyz's checks (Redis, store)"
    )
    audit_retention_days: int = Field(
        default=6 * 366, gt=0, description="How long archived audit records stay locked"
    )
    retention_schedule: Path | None = Field(
        default=None, description="MoPI retention schedule (TOML); the shipped one if unset"
    )
    retention_drill: bool = Field(
        default=False,
        description="Let `retention run --execute --now` use a future date (drills on test data)",
    )

    # The place in words (signalling/calls/geocoding.py): each lookup is off until configured.
    w3w_api_key: SecretStr | None = Field(
        default=None, description="what3words API key; no what3words lookups when unset"
    )
    w3w_base_url: str = Field(
        default="https://api.what3words.com", description="what3words REST API"
    )
    geocoder_url: str | None = Field(
        default=None,
        description="Nominatim server for addresses (reverse geocoding); none when unset",
    )
    geocoder_user_agent: str = Field(
        default="SceneLink", min_length=1, description="User-Agent sent to the geocoder"
    )
    place_timeout_s: float = Field(
        default=5.0, gt=0, description="Deadline for one what3words or geocoder request"
    )

    # Chat between the caller's page and the console (signalling/calls/chat.py).
    chat_max_chars: int = Field(
        default=500, ge=1, le=1000, description="Longest chat message, in characters"
    )
    chat_rate_messages: int = Field(
        default=5, ge=1, description="Chat messages one side may send within chat_rate_window_s"
    )
    chat_rate_window_s: float = Field(
        default=10.0, gt=0, description="The window of the chat rate limit (per side)"
    )
    chat_poll_s: float = Field(
        default=20.0, gt=0, description="Longest wait of a caller page's chat poll (no channel)"
    )
    chat_phrases: list[str] = Field(
        default=["Are you safe to talk?", "Stay where you are", "Help is on the way"],
        description="Canned phrases offered to the call handler",
    )
    # Machine translation of chat (signalling/calls/translate.py): off unless a URL is set.
    translate_url: str | None = Field(
        default=None, description="A (self-hosted) LibreTranslate server; none when unset"
    )
    translate_api_key: SecretStr | None = Field(
        default=None, description="LibreTranslate API key, where the server asks for one"
    )
    translate_timeout_s: float = Field(
        default=3.0, gt=0, description="Deadline for one translation; then the original only"
    )
    handler_language: str = Field(
        default="en", description="The call handlers' language, for chat translation"
    )

    # Files from the caller's phone and stills (signalling/calls/uploads.py).
    upload_max_mb: int = Field(
        default=200, ge=1, description="Largest photo or video a caller may send, in MiB"
    )
    upload_chunk_max_kb: int = Field(
        default=1024, ge=16, description="Largest piece of an upload in one request, in KiB"
    )
    upload_idle_s: float = Field(
        default=900.0,
        gt=0,
        description="An unfinished upload that gets nothing for this long is thrown away",
    )
    stills_interval_s: float = Field(
        default=5.0, gt=0, description="How often the page sends a still when video cannot flow"
    )
    stills_bitrate_floor_kbps: float = Field(
        default=64.0,
        ge=0,
        description="Received video below this for stills_floor_s: the page falls back to stills",
    )
    stills_floor_s: float = Field(
        default=10.0, gt=0, description="How long video must stay below the floor to fall back"
    )

    tile_url: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    tile_attribution: str = "© OpenStreetMap contributors"

    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_message_bytes: int = Field(default=4096, ge=256, description="Largest data-channel message")

    @property
    def layout(self) -> DataFolder:
        return DataFolder(self.data_dir)

    @property
    def accounts_path(self) -> Path:
        return self.accounts_file or self.layout.accounts

    @property
    def evidence_dir(self) -> Path:
        """The evidence spool: in the data folder, or this node's in the shared spool."""
        if self.shared_spool is None:
            return self.layout.evidence_dir
        return self.shared_spool / (
            self.node_id or load_or_create_node_id(self.layout.node_id_file)
        )

    @model_validator(mode="after")
    def providers_complete(self) -> Settings:
        """A chosen SMS provider, sign-on provider, TURN server or event webhook must be fully
        configured to start."""
        needed: tuple[str, ...] = {
            "notify": ("notify_api_key", "notify_template_id"),
            "webhook": ("sms_webhook_url", "sms_webhook_secret"),
        }.get(self.sms_provider, ())
        if self.oidc_issuer is not None:
            needed += ("oidc_client_id", "oidc_client_secret")
        if self.turn_urls:
            needed += ("turn_secret",)
        if self.webhook_url is not None:
            needed += ("webhook_secret",)
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError("missing settings: " + ", ".join(missing))
        return self

    def sms_template_for(self, mode: SessionMode, language: str | None = None) -> str:
        """The SMS wording for an invite type (its ``sms_setting``) in ``language`` (None: the
        default language); English where the language has none for that type."""
        own = self.sms_templates.get(language or self.default_language, {}).get(mode)
        if own is not None:
            return own
        template: str = getattr(self, INVITES[mode].sms_setting)
        return template

    @model_validator(mode="after")
    def default_language_known(self) -> Settings:
        codes = language_codes()
        if self.default_language not in codes:
            raise ValueError(
                f"SCENELINK_DEFAULT_LANGUAGE {self.default_language!r} has no caller-page "
                f"catalogue; there are: {', '.join(codes)}"
            )
        return self

    @model_validator(mode="after")
    def sms_templates_fit(self) -> Settings:
        """Each invite's SMS must be one GSM 7-bit segment with the force's name and the
        longest link expected: a typical public URL's, and the configured one's."""
        try:
            septets(self.force_name)
        except ValueError as exc:
            raise ValueError(f"SCENELINK_FORCE_NAME cannot be sent by SMS: {exc}") from None
        link_id = "x" * LINK_ID_LENGTH
        bases = [TYPICAL_PUBLIC_URL] + ([self.public_url] if self.public_url else [])
        templates = [
            (f"SCENELINK_{name.upper()}", getattr(self, name))
            for name in sorted({kind.sms_setting for kind in INVITES.values()})
        ]
        for language, wording in sorted(self.sms_templates.items()):
            if language not in language_codes():
                raise ValueError(
                    f"SCENELINK_SMS_TEMPLATES[{language!r}]: no caller-page catalogue "
                    f"{language}.json, so the page could not be in that language"
                )
            templates += [
                (f"SCENELINK_SMS_TEMPLATES[{language!r}][{mode!r}]", template)
                for mode, template in sorted(wording.items())
            ]
        for name, template in templates:
            for base in bases:
                link = f"{base.rstrip('/')}/c/{link_id}"
                problem = template_problem(template, self.force_name, link)
                if problem is not None:
                    raise ValueError(f"{name} does not fit one SMS: {problem}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        config_file = os.environ.get("SCENELINK_CONFIG")
        if config_file:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)),)
        return sources


def load_settings(**overrides: object) -> Settings:
    """Read the configuration; keyword overrides win (tests and the CLI use them)."""
    return Settings(**overrides)  # type: ignore[arg-type]
