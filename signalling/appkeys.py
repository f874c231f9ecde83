"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from recorder.evidence import Evidence

from .audit import AuditTrail
from .audit_archive import AuditArchiver
from .auth import Operator, OperatorDirectory
from .config import Settings
from .exports import ExportJobs
from .oidc import OidcClient
from .service import SessionService
from .shares import Share
from .sharing import ShareService
from .throttle import LoginThrottle

SETTINGS = web.AppKey("settings", Settings)
OPERATORS = web.AppKey("operators", OperatorDirectory)
SERVICE = web.AppKey("service", SessionService)
AUDIT = web.AppKey("audit", AuditTrail)
AUDIT_ARCHIVE = web.AppKey("audit_archive", AuditArchiver)
EVIDENCE = web.AppKey("evidence", Evidence)
EXPORTS = web.AppKey("exports", ExportJobs)
THROTTLE = web.AppKey("throttle", LoginThrottle)
OIDC = web.AppKey("oidc", OidcClient)  # only when single sign-on is configured
SHARING = web.AppKey("sharing", ShareService)
OPERATOR = web.RequestKey("operator", Operator)
SHARE = web.RequestKey("share", Share)  # the share an officer-only operator watches through
