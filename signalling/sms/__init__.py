"""Sending the caller's link by SMS, through the provider adapter chosen in configuration."""

from __future__ import annotations

from signalling.config import Settings
from signalling.sms.base import (
    LogSmsSender,
    SentMessage,
    SmsError,
    SmsMessage,
    SmsSender,
    redact_links,
)
from signalling.sms.notify import NotifySmsSender
from signalling.sms.sns import SnsSmsSender
from signalling.sms.webhook import WebhookSmsSender

__all__ = [
    "LogSmsSender",
    "SentMessage",
    "SmsError",
    "SmsMessage",
    "SmsSender",
    "redact_links",
    "sms_sender",
]


def sms_sender(settings: Settings) -> SmsSender:
    """The configured provider's adapter; ``Settings`` has checked that it is complete."""
    timeout_s = settings.sms_timeout_s
    if settings.sms_provider == "notify":
        assert settings.notify_api_key is not None and settings.notify_template_id is not None
        return NotifySmsSender(
            settings.notify_api_key.get_secret_value(),
            settings.notify_template_id,
            settings.notify_base_url,
            timeout_s,
        )
    if settings.sms_provider == "sns":
        return SnsSmsSender(
            settings.sns_region, settings.sns_endpoint_url, settings.sns_sender_id, timeout_s
        )
    if settings.sms_provider == "webhook":
        assert settings.sms_webhook_url is not None and settings.sms_webhook_secret is not None
        return WebhookSmsSender(
            settings.sms_webhook_url,
            settings.sms_webhook_secret.get_secret_value().encode(),
            timeout_s,
        )
    return LogSmsSender()
