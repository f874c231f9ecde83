"""A force's own SMS gateway: the message POSTed as JSON to a URL, signed with a shared key."""

from __future__ import annotations

import hashlib
import hmac
import json

from signalling.sms.base import SmsMessage, log_sent
from signalling.sms.http import post_json

SIGNATURE_HEADER = "X-SceneLink-Signature"


def signature(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the exact body>``, as the receiver recomputes it."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSmsSender:
    def __init__(self, url: str, secret: bytes, timeout_s: float = 10) -> None:
        self._url = url
        self._secret = secret
        self._timeout_s = timeout_s

    async def send(self, message: SmsMessage) -> None:
        body = json.dumps(
            {
                "session_id": message.session_id,
                "to": message.to,
                "text": message.text,
                "reference": message.session_id,
            }
        ).encode()
        await post_json(
            "the SMS webhook",
            self._url,
            body,
            {SIGNATURE_HEADER: signature(self._secret, body)},
            self._timeout_s,
        )
        log_sent("webhook", message)
