"""Sending the caller's link by SMS, through a provider adapter chosen in configuration."""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .phone import mask
from .sessions import utcnow

logger = logging.getLogger(__name__)

_LINK_TOKEN = re.compile(r"/c/[A-Za-z0-9_\-.]+")


class SmsError(Exception):
    """The provider refused or could not be reached; shown to the call handler."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    session_id: str
    to_masked: str
    text: str
    sent_at: datetime


class SmsSender(Protocol):
    async def send(self, session_id: str, to: str, text: str) -> None: ...


def redact_links(text: str) -> str:
    """Caller tokens are credentials: logs get the link with the token cut out."""
    return _LINK_TOKEN.sub("/c/<token>", text)


class LogSmsSender:
    """Development default: nothing leaves the machine.

    The log gets the message with the token redacted; the full text is kept in memory for
    signed-in operators to see on the console (the "development SMS outbox").
    """

    def __init__(self, keep: int = 50) -> None:
        self.outbox: deque[SentMessage] = deque(maxlen=keep)

    async def send(self, session_id: str, to: str, text: str) -> None:
        message = SentMessage(session_id, mask(to), text, utcnow())
        self.outbox.append(message)
        logger.info("SMS (log provider) to %s: %s", message.to_masked, redact_links(text))
