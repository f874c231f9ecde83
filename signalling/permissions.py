"""Who may call what: one table for every route, enforced before any handler runs.

A route with no rule is refused (fail closed), and a test walks every registered route so
that adding one without a rule fails the suite.
"""

from __future__ import annotations

from typing import Literal

Rule = frozenset[str] | Literal["public", "caller"]

LIVE = frozenset({"call_handler", "officer", "supervisor", "admin"})
SEND = frozenset({"call_handler", "supervisor", "admin"})
EVIDENCE = frozenset({"call_handler", "investigator", "supervisor", "admin"})
ANY_OPERATOR = LIVE | EVIDENCE
AUDIT = frozenset({"supervisor", "admin"})

RULES: dict[tuple[str, str], Rule] = {
    # pages and assets
    ("GET", "/"): "public",
    ("GET", "/console/"): "public",
    ("GET", "/console/static"): "public",
    ("GET", "/caller/static"): "public",
    ("GET", "/c/{token}"): "caller",
    ("GET", "/api/openapi.json"): "public",
    # sign-in
    ("POST", "/api/login"): "public",
    ("POST", "/api/logout"): "public",
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
    ("GET", "/api/sessions/{session_id}/trail"): ANY_OPERATOR,
    ("GET", "/api/sessions/{session_id}/ice"): LIVE,
    ("POST", "/api/sessions/{session_id}/viewers"): LIVE,
    ("GET", "/api/sessions/{session_id}/ws"): LIVE,
    ("GET", "/api/sms/outbox"): SEND,
    # evidence and oversight
    ("GET", "/api/recordings"): EVIDENCE,
    ("GET", "/api/recordings/{session_id}/media/{name}"): EVIDENCE,
    ("GET", "/api/audit"): AUDIT,
}


def rule_for(method: str, canonical: str) -> Rule | None:
    return RULES.get(("GET" if method == "HEAD" else method, canonical))
