"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from recorder.evidence import Evidence
from retention.book import RetentionBook
from signalling.audit.archive import AuditArchiver
from signalling.audit.trail import AuditTrail
from signalling.calls.caller_files import CallerFiles
from signalling.calls.service import SessionService
from signalling.calls.shares import Share
from signalling.calls.sharing import ShareService
from signalling.calls.state import StateStore
from signalling.cluster.forward import Forwarder
from signalling.cluster.node import Node
from signalling.cluster.registry import Registry
from signalling.config import Settings
from signalling.disclosure.derivatives import DerivativeJobs
from signalling.disclosure.exports import ExportJobs
from signalling.operators.auth import Operator, OperatorDirectory
from signalling.operators.oidc import OidcClient
from signalling.operators.throttle import LoginThrottle
from signalling.ops.metrics import Metrics
from signalling.ops.readiness import Readiness
from signalling.reports.takeup import TakeupFigures
from signalling.webhooks import Webhooks

SETTINGS = web.AppKey("settings", Settings)
SECRET = web.AppKey("secret", bytes)  # signs links and console cookies (see token_secret)
STATE = web.AppKey("state", StateStore)
OPERATORS = web.AppKey("operators", OperatorDirectory)
SERVICE = web.AppKey("service", SessionService)
FILES = web.AppKey("files", CallerFiles)  # photos, videos and stills from the caller
AUDIT = web.AppKey("audit", AuditTrail)
AUDIT_ARCHIVE = web.AppKey("audit_archive", AuditArchiver)
EVIDENCE = web.AppKey("evidence", Evidence[RetentionBook])
EXPORTS = web.AppKey("exports", ExportJobs)
DERIVATIVES = web.AppKey("derivatives", DerivativeJobs)  # redacted copies and clips
THROTTLE = web.AppKey("throttle", LoginThrottle)
OIDC = web.AppKey("oidc", OidcClient)  # only when single sign-on is configured
SHARING = web.AppKey("sharing", ShareService)
WEBHOOKS = web.AppKey("webhooks", Webhooks)  # only when an event webhook is configured
TAKEUP = web.AppKey("takeup", TakeupFigures)
CLUSTER = web.AppKey("cluster", Registry)  # which worker owns which session
FORWARDER = web.AppKey("forwarder", Forwarder)  # requests passed on to a session's owner
NODE = web.AppKey("node", Node)  # this worker's heartbeat, take-overs and drain
READINESS = web.AppKey("readiness", Readiness)  # /readyz's checks (and the draining flag)
METRICS = web.AppKey("metrics", Metrics)
OPERATOR = web.RequestKey("operator", Operator)
SHARE = web.RequestKey("share", Share)  # the share an officer-only operator watches through
