"""SMS adapters against real servers: local stand-ins for GOV.UK Notify and a webhook that
check each request as the real receiver would, and moto's SNS."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from signalling.config import load_settings
from signalling.sms import LogSmsSender, SmsError, SmsMessage, SmsSender, sms_sender
from signalling.sms.notify import NotifyKey
from tests.harness import free_port
from tests.providers import WEBHOOK_SECRET, Receiver, webhook_check

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
NOTIFY_KEY = f"scenelink_live-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = "217a419e-6a7d-482a-9596-718b889dffce"
PHONE = "+447700900123"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-token.sig"
LINK = f"https://scenelink.example/c/{TOKEN}"

MESSAGE = SmsMessage(
    session_id="s-1",
    force="Test Force",
    to=PHONE,
    text=f"Test Force: tap {LINK}",
    link=LINK,
    sent_by="alice",
)
Serve = Callable[[web.Application], Awaitable[TestServer]]


def notify_check(request: web.Request, body: bytes) -> str | None:
    """What GOV.UK Notify checks: the bearer JWT (HS256 with the service's secret, issued
    by the service within the last 30 s) and a complete SMS request."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer":
        return "no bearer token"
    try:
        claims = jwt.decode(
            token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]}
        )
    except jwt.InvalidTokenError as exc:
        return f"bad token: {exc}"
    if claims["iss"] != SERVICE_ID or abs(time.time() - claims["iat"]) > 30:
        return "wrong issuer or stale token"
    sent = json.loads(body)
    if set(sent) != {"phone_number", "template_id", "personalisation", "reference"}:
        return f"unexpected fields {sorted(sent)}"
    return None


@pytest.fixture
async def notify(aiohttp_server: Serve) -> tuple[Receiver, str]:
    receiver = Receiver(notify_check)
    server = await aiohttp_server(receiver.app("/v2/notifications/sms"))
    return receiver, str(server.make_url(""))


@pytest.fixture
async def webhook(aiohttp_server: Serve) -> tuple[Receiver, str]:
    receiver = Receiver(webhook_check)
    server = await aiohttp_server(receiver.app("/sms"))
    return receiver, str(server.make_url("/sms"))


def notify_sender(base_url: str, api_key: str = NOTIFY_KEY, **extra: Any) -> SmsSender:
    settings = load_settings(
        sms_provider="notify",
        notify_api_key=api_key,
        notify_template_id=TEMPLATE_ID,
        notify_base_url=base_url,
        **extra,
    )
    return sms_sender(settings)


def webhook_sender(url: str, secret: str = WEBHOOK_SECRET, **extra: Any) -> SmsSender:
    settings = load_settings(
        sms_provider="webhook", sms_webhook_url=url, sms_webhook_secret=secret, **extra
    )
    return sms_sender(settings)


async def test_notify_request_is_authenticated_and_complete(
    notify: tuple[Receiver, str],
) -> None:
    receiver, url = notify
    await notify_sender(url).send(MESSAGE)
    assert receiver.refusals == []
    assert receiver.accepted == [
        {
            "phone_number": PHONE,
            "template_id": TEMPLATE_ID,
            "personalisation": {"message": MESSAGE.text, "force": "Test Force", "link": LINK},
            "reference": "s-1",
        }
    ]


async def test_notify_refuses_a_token_signed_with_another_key(
    notify: tuple[Receiver, str],
) -> None:
    receiver, url = notify
    other = f"scenelink_live-{SERVICE_ID}-{'0' * 8}-0000-4000-8000-{'0' * 12}"
    with pytest.raises(SmsError, match="GOV.UK Notify answered HTTP 403"):
        await notify_sender(url, api_key=other).send(MESSAGE)
    assert receiver.accepted == [] and "Signature verification failed" in receiver.refusals[0]


def test_notify_key_is_read_from_its_end() -> None:
    key = NotifyKey.parse(NOTIFY_KEY)
    assert (key.service_id, key.secret) == (SERVICE_ID, SECRET)
    assert SECRET not in repr(key)
    with pytest.raises(ValueError, match="not a GOV.UK Notify API key"):
        NotifyKey.parse("scenelink_live-" + SERVICE_ID)


async def test_webhook_body_is_signed(webhook: tuple[Receiver, str]) -> None:
    receiver, url = webhook
    await webhook_sender(url).send(MESSAGE)
    assert receiver.refusals == []
    assert receiver.accepted == [
        {"session_id": "s-1", "to": PHONE, "text": MESSAGE.text, "reference": "s-1"}
    ]
    with pytest.raises(SmsError, match="webhook answered HTTP 403"):
        await webhook_sender(url, secret="not-the-receivers-secret").send(MESSAGE)
    assert receiver.refusals == ["bad signature"]


def assert_discreet(error: SmsError) -> None:
    """What the call handler (and the log) sees names neither the link nor the number."""
    text = str(error)
    assert TOKEN not in text and "/c/" not in text and "900123" not in text


@pytest.mark.parametrize("provider", ["notify", "webhook"])
async def test_server_error_and_timeout_fail_the_send(
    provider: str, notify: tuple[Receiver, str], webhook: tuple[Receiver, str]
) -> None:
    receiver, url = notify if provider == "notify" else webhook
    make = notify_sender if provider == "notify" else webhook_sender
    receiver.status = 500
    with pytest.raises(SmsError, match="answered HTTP 500") as failed:
        await make(url).send(MESSAGE)
    assert_discreet(failed.value)
    receiver.status, receiver.delay = 201, 2.0
    started = time.monotonic()
    with pytest.raises(SmsError, match=r"did not answer within 0\.3 s") as slow:
        await make(url, sms_timeout_s=0.3).send(MESSAGE)
    assert time.monotonic() - started < 1.5
    assert_discreet(slow.value)


async def test_unreachable_provider_fails_the_send() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(SmsError, match="cannot reach GOV.UK Notify") as refused:
        await notify_sender(nobody).send(MESSAGE)
    assert_discreet(refused.value)
    with pytest.raises(SmsError, match="cannot reach the SMS webhook"):
        await webhook_sender(nobody + "/sms").send(MESSAGE)


async def sent_through_moto(moto_server: str, phone: str) -> list[str]:
    """moto keeps each SMS published to a phone as a model in its dashboard data."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{moto_server}/moto-api/data.json") as response,
    ):
        data = json.loads(await response.text())
    published = data.get("sns", {}).get("SMS", [])  # absent until the first publish
    return [sms["message"] for sms in published if sms["phone_number"] == phone]


async def test_sns_publishes_a_transactional_sms(moto_server: str) -> None:
    sender = sms_sender(
        load_settings(
            sms_provider="sns",
            sns_endpoint_url=moto_server,
            sns_region="eu-west-2",
            sns_sender_id="POLICE",
        )
    )
    phone = "+447700900456"
    message = SmsMessage("s-2", "Test Force", phone, MESSAGE.text, LINK, "alice")
    assert await sent_through_moto(moto_server, phone) == []
    await sender.send(message)
    assert await sent_through_moto(moto_server, phone) == [MESSAGE.text]


async def test_sns_failures_are_sms_errors(moto_server: str) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = sms_sender(
        load_settings(sms_provider="sns", sns_endpoint_url=nobody, sns_region="eu-west-2")
    )
    with pytest.raises(SmsError, match="cannot reach SNS") as refused:
        await unreachable.send(MESSAGE)
    assert_discreet(refused.value)
    too_long = SmsMessage("s-3", "Test Force", PHONE, "x" * 2000, LINK, "alice")
    sns = sms_sender(
        load_settings(sms_provider="sns", sns_endpoint_url=moto_server, sns_region="eu-west-2")
    )
    with pytest.raises(SmsError, match="SNS refused the message"):
        await sns.send(too_long)


async def test_no_adapter_logs_the_token_or_the_number(
    caplog: pytest.LogCaptureFixture,
    notify: tuple[Receiver, str],
    webhook: tuple[Receiver, str],
    moto_server: str,
) -> None:
    # The server logs at INFO (botocore's DEBUG output shows request bodies, as any
    # HTTP client's would).
    caplog.set_level(logging.INFO)
    log = LogSmsSender()
    senders: list[SmsSender] = [
        log,
        notify_sender(notify[1]),
        webhook_sender(webhook[1]),
        sms_sender(
            load_settings(sms_provider="sns", sns_endpoint_url=moto_server, sns_region="eu-west-2")
        ),
    ]
    for sender in senders:
        await sender.send(MESSAGE)
    # The console's outbox keeps it in full, for its sender alone.
    assert [m.text for m in log.sent_by("alice")] == [MESSAGE.text] and log.sent_by("bob") == []
    accepted = [r for r in caplog.records if r.name == "signalling.sms"]
    assert len(accepted) == 4
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in everything and PHONE not in everything and "/c/<token>" in everything
    assert TOKEN not in repr(MESSAGE) and PHONE not in repr(MESSAGE)


def test_a_chosen_provider_must_be_configured() -> None:
    with pytest.raises(ValidationError, match="notify_api_key, notify_template_id"):
        load_settings(sms_provider="notify")
    with pytest.raises(ValidationError, match="sms_webhook_url, sms_webhook_secret"):
        load_settings(sms_provider="webhook")
    assert isinstance(sms_sender(load_settings()), LogSmsSender)
