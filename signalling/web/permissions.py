"""Who may call what: one table for every route, enforced before any handler runs.

A route with no rule is refused (fail closed), and a test walks every registered route so
that adding one without a rule fails the suite. Two per-session rules narrow the table:

- an officer with no other role sees only the sessions shared with them (``needs_share``),
  checked where the session routes load their session;
- a call handler with no store-wide role replays only the sessions they took part in
  (created, resent, watched live, shared or ended: the evidence's events name them), for
  ``SCENELINK_HANDLER_REPLAY_HOURS`` after the session (``replays_own_only``), checked where
  the recording routes load their recording; searching the whole store is for investigators,
  supervisors and admins (who release holds and shorten locks on what a recording holds).

One server serves one control room: any call handler (and supervisor, admin) may end, resend
or share any of its live sessions, as they cover for each other on shift; when the actor did
not create the session, the audit record names its creator (``creator``). A live session's
trail follows the live session's rule; investigators read trails through the recordings.
The audit trail is read by supervisors alone: admins run the system, not its oversight.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

# "caller" and "officer_link" routes authenticate a link's bearer token in the handler;
# "metrics" the bearer token SCENELINK_METRICS_TOKEN (Prometheus has no console account).
Rule = frozenset[str] | Literal["public", "caller", "officer_link", "metrics"]

LIVE = frozenset({"call_handler", "officer", "supervisor", "admin"})
SEND = frozenset({"call_handler", "supervisor", "admin"})
STORE_WIDE = frozenset({"investigator", "supervisor", "admin"})
EVIDENCE = STORE_WIDE | {"call_handler"}
ANY_OPERATOR = LIVE | EVIDENCE
AUDIT = frozenset({"supervisor"})
DISCLOSE = STORE_WIDE
# Redacted copies and clips for disclosure: the investigators' work, and their supervisors'.
REDACT = frozenset({"investigator", "supervisor"})
SHARED_ONLY = frozenset({"officer"})
# Retention: call handlers link and classify; holds are placed by investigators and above and
# released only by supervisors and admins; shortening a lock is an admin's alone.
RETENTION_REVIEW = frozenset({"investigator", "supervisor", "admin"})
RETENTION_LINK = EVIDENCE
RETENTION_RELEASE = frozenset({"supervisor", "admin"})
RETENTION_SHORTEN = frozenset({"admin"})
ADMIN = frozenset({"admin"})
TAKEUP = frozenset({"supervisor", "admin"})

RULES: dict[tuple[str, str], Rule] = {
    # pages and assets
    ("GET", "/"): "public",
    ("GET", "/console/"): "public",
    ("GET", "/console/static"): "public",
    ("GET", "/caller/static"): "public",
    ("GET", "/c/{token}"): "caller",
    ("GET", "/o/{token}"): "officer_link",
    ("GET", "/api/openapi.json"): "public",
    # operations: the orchestrator's probes (cheap, nothing personal) and Prometheus
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("GET", "/metrics"): "metrics",
    # sign-in
    ("POST", "/api/login"): "public",
    ("POST", "/api/logout"): "public",
    ("GET", "/api/oidc/config"): "public",
    ("GET", "/api/oidc/login"): "public",
    ("GET", "/api/oidc/callback"): "public",
    ("GET", "/api/me"): ANY_OPERATOR,
    ("GET", "/api/config"): ANY_OPERATOR,
    ("GET", "/api/accounts"): ADMIN,
    # the caller (authenticated by the link's token inside the handler)
    ("GET", "/api/caller/config"): "caller",
    ("POST", "/api/caller/offer"): "caller",
    ("POST", "/api/caller/end"): "caller",
    ("POST", "/api/caller/state"): "caller",
    ("POST", "/api/caller/fixes"): "caller",
    ("POST", "/api/caller/uploads"): "caller",
    ("GET", "/api/caller/uploads/{upload_id}"): "caller",
    ("PUT", "/api/caller/uploads/{upload_id}"): "caller",
    ("POST", "/api/caller/stills"): "caller",
    ("POST", "/api/caller/chat"): "caller",
    ("GET", "/api/caller/chat"): "caller",
    ("POST", "/api/caller/chat/receipts"): "caller",
    ("POST", "/api/caller/silent"): "caller",
    # live sessions
    ("POST", "/api/sessions"): SEND,
    ("GET", "/api/sessions"): LIVE,
    ("GET", "/api/sessions/{session_id}"): LIVE,
    ("POST", "/api/sessions/{session_id}/end"): SEND,
    ("POST", "/api/sessions/{session_id}/resend"): SEND,
    ("GET", "/api/sessions/{session_id}/trail"): LIVE,
    ("GET", "/api/sessions/{session_id}/ice"): LIVE,
    ("POST", "/api/sessions/{session_id}/viewers"): LIVE,
    ("GET", "/api/sessions/{session_id}/ws"): LIVE,
    # photos, videos and stills (an officer sees those of the sessions shared with them)
    ("GET", "/api/sessions/{session_id}/files"): LIVE,
    ("GET", "/api/sessions/{session_id}/files/{name}"): LIVE,
    ("POST", "/api/sessions/{session_id}/snapshot"): SEND,
    ("POST", "/api/sessions/{session_id}/photo-request"): SEND,
    # chat and silent mode: anyone watching live reads, call handlers write
    ("GET", "/api/sessions/{session_id}/chat"): LIVE,
    ("POST", "/api/sessions/{session_id}/chat"): SEND,
    ("POST", "/api/sessions/{session_id}/chat/receipts"): SEND,
    ("POST", "/api/sessions/{session_id}/silent"): SEND,
    ("POST", "/api/sessions/{session_id}/microphone"): SEND,
    ("GET", "/api/sms/outbox"): SEND,
    # sharing with officers (an officer link's own routes check its token)
    ("POST", "/api/sessions/{session_id}/shares"): SEND,
    ("GET", "/api/sessions/{session_id}/shares"): SEND,
    ("DELETE", "/api/sessions/{session_id}/shares/{share_id}"): SEND,
    ("GET", "/api/officer/share"): "officer_link",
    ("POST", "/api/officer/viewers"): "officer_link",
    ("GET", "/api/officer/ws"): "officer_link",
    # evidence and oversight
    ("GET", "/api/recordings"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/media/{name}"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/trail"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/files"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/files/{name}"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/timeline"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/working-copy"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/bundle"): DISCLOSE,
    ("POST", "/api/recordings/{session_id}/faces"): REDACT,
    ("POST", "/api/recordings/{session_id}/redactions"): REDACT,
    ("POST", "/api/recordings/{session_id}/clips"): REDACT,
    ("GET", "/api/derivatives/{derivative_id}"): REDACT,
    ("POST", "/api/derivatives/{derivative_id}/cancel"): REDACT,
    ("GET", "/api/derivatives/{derivative_id}/files/{name}"): REDACT,
    ("POST", "/api/exports"): DISCLOSE,
    ("GET", "/api/exports/{export_id}"): DISCLOSE,
    ("GET", "/api/exports/{export_id}/download"): DISCLOSE,
    ("GET", "/api/evidence/status"): ANY_OPERATOR,
    ("GET", "/.well-known/jwks.json"): "public",
    ("GET", "/api/audit"): AUDIT,
    ("GET", "/api/audit/extract"): AUDIT,
    # retention (MoPI)
    ("GET", "/api/retention/queue"): RETENTION_REVIEW,
    ("GET", "/api/retention/{session_id}"): RETENTION_LINK,
    ("POST", "/api/retention/{session_id}/links"): RETENTION_LINK,
    ("POST", "/api/retention/{session_id}/holds"): RETENTION_REVIEW,
    ("POST", "/api/retention/{session_id}/holds/{hold_id}/release"): RETENTION_RELEASE,
    ("POST", "/api/retention/{session_id}/shorten"): RETENTION_SHORTEN,
    # figures (no personal data)
    ("GET", "/api/reports/takeup"): TAKEUP,
}


def needs_share(roles: Iterable[str]) -> bool:
    """An officer with no other role sees and watches only the sessions shared with them."""
    return set(roles) <= SHARED_ONLY


def replays_own_only(roles: Iterable[str]) -> bool:
    """A call handler with no store-wide role replays only the sessions they took part in."""
    return not STORE_WIDE.intersection(roles)


def allowed(roles: Iterable[str]) -> list[str]:
    """The signed-in routes these roles may call, as ``"METHOD /canonical/path"``: told to the
    console at sign-in, so that it shows and polls only what the role may use (this table is
    the one authority; the console repeats none of it)."""
    held = set(roles)
    return sorted(
        f"{method} {path}"
        for (method, path), rule in RULES.items()
        if isinstance(rule, frozenset) and held & rule
    )


def rule_for(method: str, canonical: str) -> Rule | None:
    return RULES.get(("GET" if method == "HEAD" else method, canonical))
