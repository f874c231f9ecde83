"""Who may call what: one table for every route, enforced before any handler runs.

A route with no rule is refused (fail closed), and a test walks every registered route so
that adding one without a rule fails the suite. Which sessions an officer may see is the one
per-session rule (``needs_share``), checked where the session routes load their session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

# "caller" and "officer_link" routes authenticate a link's bearer token in the handler.
Rule = frozenset[str] | Literal["public", "caller", "officer_link"]

LIVE = frozenset({"call_handler", "officer", "supervisor", "admin"})
SEND = frozenset({"call_handler", "supervisor", "admin"})
EVIDENCE = frozenset({"call_handler", "investigator", "supervisor", "admin"})
ANY_OPERATOR = LIVE | EVIDENCE
AUDIT = frozenset({"supervisor", "admin"})
DISCLOSE = frozenset({"investigator", "supervisor", "admin"})
SHARED_ONLY = frozenset({"officer"})
# Retention: call handlers link and classify; holds are placed by investigators and above and
# released only by supervisors and admins; shortening a lock is an admin's alone.
RETENTION_REVIEW = frozenset({"investigator", "supervisor", "admin"})
RETENTION_LINK = EVIDENCE
RETENTION_RELEASE = AUDIT
RETENTION_SHORTEN = frozenset({"admin"})

RULES: dict[tuple[str, str], Rule] = {
    # pages and assets
    ("GET", "/"): "public",
    ("GET", "/console/"): "public",
    ("GET", "/console/static"): "public",
    ("GET", "/caller/static"): "public",
    ("GET", "/c/{token}"): "caller",
    ("GET", "/o/{token}"): "officer_link",
    ("GET", "/api/openapi.json"): "public",
    # sign-in
    ("POST", "/api/login"): "public",
    ("POST", "/api/logout"): "public",
    ("GET", "/api/oidc/config"): "public",
    ("GET", "/api/oidc/login"): "public",
    ("GET", "/api/oidc/callback"): "public",
    ("GET", "/api/me"): ANY_OPERATOR,
    ("GET", "/api/config"): ANY_OPERATOR,
    # the caller (authenticated by the link's token inside the handler)
    ("GET", "/api/caller/config"): "caller",
    ("POST", "/api/caller/offer"): "caller",
    ("POST", "/api/caller/end"): "caller",
    # live sessions
    ("POST", "/api/sessions"): SEND,
    ("GET", "/api/sessions"): LIVE,
    ("GET", "/api/sessions/{session_id}"): LIVE,
    ("POST", "/api/sessions/{session_id}/end"): SEND,
    ("POST", "/api/sessions/{session_id}/resend"): SEND,
    ("GET", "/api/sessions/{session_id}/trail"): ANY_OPERATOR,
    ("GET", "/api/sessions/{session_id}/ice"): LIVE,
    ("POST", "/api/sessions/{session_id}/viewers"): LIVE,
    ("GET", "/api/sessions/{session_id}/ws"): LIVE,
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
    ("GET", "/api/recordings/{session_id}/media/{name}"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/trail"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/bundle"): DISCLOSE,
    ("POST", "/api/exports"): DISCLOSE,
    ("GET", "/api/exports/{export_id}"): DISCLOSE,
    ("GET", "/api/exports/{export_id}/download"): DISCLOSE,
    ("GET", "/api/evidence/status"): ANY_OPERATOR,
    ("GET", "/.well-known/jwks.json"): "public",
    ("GET", "/api/audit"): AUDIT,
    # retention (MoPI)
    ("GET", "/api/retention/queue"): RETENTION_REVIEW,
    ("GET", "/api/retention/{session_id}"): RETENTION_LINK,
    ("POST", "/api/retention/{session_id}/links"): RETENTION_LINK,
    ("POST", "/api/retention/{session_id}/holds"): RETENTION_REVIEW,
    ("POST", "/api/retention/{session_id}/holds/{hold_id}/release"): RETENTION_RELEASE,
    ("POST", "/api/retention/{session_id}/shorten"): RETENTION_SHORTEN,
}


def needs_share(roles: Iterable[str]) -> bool:
    """An officer with no other role sees and watches only the sessions shared with them."""
    return set(roles) <= SHARED_ONLY


def rule_for(method: str, canonical: str) -> Rule | None:
    return RULES.get(("GET" if method == "HEAD" else method, canonical))
