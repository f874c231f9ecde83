"""In a real browser: a call handler signs in through the force's identity provider, sends a
link that the SMS gateway fails to deliver, sees why, and retries once the gateway is back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, expect

from tests.e2e.conftest import RunningServer, start_server
from tests.providers import (
    CLIENT_ID,
    CLIENT_SECRET,
    WEBHOOK_SECRET,
    Provider,
    Receiver,
    webhook_check,
)

pytestmark = pytest.mark.e2e
Serve = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def provider(aiohttp_server: Serve) -> Provider:
    provider = Provider()
    provider.url = str((await aiohttp_server(provider.app())).make_url("")).rstrip("/")
    return provider


@pytest.fixture
async def gateway(aiohttp_server: Serve) -> tuple[Receiver, str]:
    receiver = Receiver(webhook_check)
    return receiver, str((await aiohttp_server(receiver.app("/sms"))).make_url("/sms"))


@pytest.fixture
def server(
    tmp_path: Path, provider: Provider, gateway: tuple[Receiver, str]
) -> Iterator[RunningServer]:
    yield from start_server(
        tmp_path,
        SCENELINK_SMS_PROVIDER="webhook",
        SCENELINK_SMS_WEBHOOK_URL=gateway[1],
        SCENELINK_SMS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SCENELINK_OIDC_ISSUER=provider.url,
        SCENELINK_OIDC_CLIENT_ID=CLIENT_ID,
        SCENELINK_OIDC_CLIENT_SECRET=CLIENT_SECRET,
        SCENELINK_OIDC_PROVIDER_NAME="Test IdP",
        SCENELINK_OIDC_ROLE_MAP=json.dumps({"999-handlers": ["call_handler"]}),
    )


async def test_sign_in_with_the_provider_then_retry_a_failed_sms(
    browser: Browser, server: RunningServer, provider: Provider, gateway: tuple[Receiver, str]
) -> None:
    page = await (await browser.new_context()).new_page()
    await page.goto(server.url + "/console/")
    sso = page.locator("#sso-login")
    await expect(sso).to_have_text("Sign in with Test IdP")
    await sso.click()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#username")).to_have_text("pat.smith")
    assert provider.problems == []

    receiver, _ = gateway
    receiver.status = 503
    await page.fill("#send-form [name=phone]", "07700 900123")
    await page.fill("#send-form [name=incident_ref]", "CAD-2026-0100")
    await page.click("#send-form [type=submit]")
    row = page.locator("#sessions li[data-session-id]").first
    await expect(row.locator(".sms")).to_have_text("SMS failed: the SMS webhook answered HTTP 503")
    retry = row.locator(".retry-sms")
    await expect(retry).to_be_visible()
    assert receiver.accepted == []

    receiver.status = 201
    await retry.click()
    await expect(retry).to_be_hidden()
    await expect(row.locator(".sms")).to_have_text("")
    assert len(receiver.accepted) == 1 and "/c/" in receiver.accepted[0]["text"]
