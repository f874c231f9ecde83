"""Typed keys for what the application and each request carry."""

from __future__ import annotations

from aiohttp import web

from .audit import AuditTrail
from .auth import Operator, OperatorDirectory
from .config import Settings
from .service import SessionService
from .throttle import LoginThrottle

SETTINGS = web.AppKey("settings", Settings)
OPERATORS = web.AppKey("operators", OperatorDirectory)
SERVICE = web.AppKey("service", SessionService)
AUDIT = web.AppKey("audit", AuditTrail)
THROTTLE = web.AppKey("throttle", LoginThrottle)
OPERATOR = web.RequestKey("operator", Operator)
