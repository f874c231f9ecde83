"""What every SMS adapter shares: the message, the failure, and logs that keep secrets out."""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from signalling.calls.sessions import utcnow
from signalling.sms.phone import mask

logger = logging.getLogger("signalling.sms")

_LINK_TOKEN = re.compile(r"/c/[A-Za-z0-9_\-.]+")


class SmsError(Exception):
    """The provider refused or could not be reached; shown to the call handler, so the
    reason is short and never holds the link or the full number."""


@dataclass(frozen=True, slots=True)
class SmsMessage:
    """One caller link to deliver. The number, text and link are kept out of ``repr`` so a
    log line or traceback that shows the message shows no credential and no number."""

    session_id: str
    force: str
    to: str = field(repr=False)  # E.164
    text: str = field(repr=False)  # the configured wording, link included
    link: str = field(repr=False)
    sent_by: str  # the operator who sent the link


@dataclass(frozen=True, slots=True)
class SentMessage:
    session_id: str
    to_masked: str
    text: str
    sent_at: datetime
    sent_by: str


class SmsSender(Protocol):
    async def send(self, message: SmsMessage) -> None:
        """Deliver or raise ``SmsError``."""


def redact_links(text: str) -> str:
    """Caller tokens are credentials: logs get the link with the token cut out."""
    return _LINK_TOKEN.sub("/c/<token>", text)


def log_sent(provider: str, message: SmsMessage) -> None:
    logger.info(
        "SMS (%s) to %s for session %s accepted", provider, mask(message.to), message.session_id
    )


class LogSmsSender:
    """Development default: nothing leaves the machine.

    The log gets the message with the token redacted; the full text is kept in memory for
    the operator who sent it to see on the console (the "development SMS outbox"): each one
    holds a caller's live link, so no one sees another's.
    """

    def __init__(self, keep: int = 50) -> None:
        self.outbox: deque[SentMessage] = deque(maxlen=keep)

    async def send(self, message: SmsMessage) -> None:
        sent = SentMessage(
            message.session_id, mask(message.to), message.text, utcnow(), message.sent_by
        )
        self.outbox.append(sent)
        logger.info("SMS (log provider) to %s: %s", sent.to_masked, redact_links(message.text))

    def sent_by(self, username: str) -> list[SentMessage]:
        """This operator's messages, newest first."""
        return [m for m in reversed(self.outbox) if m.sent_by == username]
