"""GOV.UK Notify: the government's messaging service, over its REST API.

The wording lives in a Notify template; SceneLink passes ``message`` (the configured
wording, link included), ``force`` and ``link`` as personalisation, so the template may be
``((message))`` or its own text around ``((link))``. Notify ignores the fields it does not use.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import jwt

from signalling.sms.base import SmsMessage, log_sent
from signalling.sms.http import post_json

NOTIFY_URL = "https://api.notifications.service.gov.uk"
_UUID_LEN = 36


@dataclass(frozen=True, slots=True)
class NotifyKey:
    """An API key is ``<key name>-<service id>-<secret key>``; both ids are UUIDs."""

    service_id: str
    secret: str = field(repr=False)

    @classmethod
    def parse(cls, api_key: str) -> NotifyKey:
        secret = api_key[-_UUID_LEN:]
        service_id = api_key[-2 * _UUID_LEN - 1 : -_UUID_LEN - 1]
        try:
            uuid.UUID(secret), uuid.UUID(service_id)
        except ValueError:
            raise ValueError("not a GOV.UK Notify API key (name-service id-secret)") from None
        if api_key[-_UUID_LEN - 1] != "-":
            raise ValueError("not a GOV.UK Notify API key (name-service id-secret)")
        return cls(service_id, secret)

    def bearer(self) -> str:
        """Notify's authentication: a fresh HS256 JWT per request, issued by the service."""
        return jwt.encode(
            {"iss": self.service_id, "iat": int(time.time())}, self.secret, algorithm="HS256"
        )


class NotifySmsSender:
    def __init__(
        self, api_key: str, template_id: str, base_url: str = NOTIFY_URL, timeout_s: float = 10
    ) -> None:
        self._key = NotifyKey.parse(api_key)
        self._template_id = template_id
        self._url = base_url.rstrip("/") + "/v2/notifications/sms"
        self._timeout_s = timeout_s

    async def send(self, message: SmsMessage) -> None:
        body = {
            "phone_number": message.to,
            "template_id": self._template_id,
            "personalisation": {
                "message": message.text,
                "force": message.force,
                "link": message.link,
            },
            "reference": message.session_id,
        }
        await post_json(
            "GOV.UK Notify",
            self._url,
            json.dumps(body).encode(),
            {"Authorization": f"Bearer {self._key.bearer()}"},
            self._timeout_s,
        )
        log_sent("GOV.UK Notify", message)
