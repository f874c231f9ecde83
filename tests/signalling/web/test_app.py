"""The composition root: building the app touches nothing; resources come and go in order."""

from __future__ import annotations

from pathlib import Path

from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RESOURCES, make_app, operator_accounts
from signalling.web.appkeys import SECRET, SERVICE, STATE


async def test_building_the_app_has_no_side_effects(tmp_path: Path) -> None:
    make_app(load_settings(data_dir=tmp_path / "data"))
    assert not (tmp_path / "data").exists()  # no token.key, no audit folder, no evidence


async def test_resources_are_made_at_start_and_released_in_reverse(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    app = make_app(load_settings(data_dir=tmp_path))
    assert list(app.cleanup_ctx) == list(RESOURCES)
    client = await aiohttp_client(app)
    assert (tmp_path / "token.key").read_bytes().strip() == app[SECRET]
    assert app[SERVICE].store is app[STATE]  # one state store, made once
    await client.close()


def test_the_generated_first_account_is_a_call_handler_only(tmp_path: Path) -> None:
    (account,) = operator_accounts(load_settings(data_dir=tmp_path))
    assert account.username == "handler"
    assert account.roles == ["call_handler"]
