"""The console script: TLS with the development certificate, configuration from a file."""

from __future__ import annotations

import json
import os
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from signalling.cli.main import main
from signalling.config import load_settings
from tests.harness import free_port, running


async def test_serves_https_with_the_development_certificate(tmp_path: Path) -> None:
    assert main(["dev-cert", "--out", str(tmp_path / "tls")]) == 0
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    port = free_port()
    env = os.environ | {
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_DATA_DIR": str(tmp_path / "data"),
        "SCENELINK_TLS_CERT": str(cert),
        "SCENELINK_TLS_KEY": str(key),
    }
    command = [sys.executable, "-m", "signalling.cli.main", "serve"]
    with running(command, port, tmp_path / "server.log", env=env):
        trusted = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"https://localhost:{port}/console/", ssl=trusted) as response:
                assert response.status == 200
                assert "max-age" in response.headers["Strict-Transport-Security"]
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"https://localhost:{port}/console/")  # not a trusted CA
    log = (tmp_path / "server.log").read_text()
    assert "sign in to the console as 'handler' with password" in log
    assert "SCENELINK_PUBLIC_URL is not set" in log


def test_configuration_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "scenelink.toml"
    config.write_text(
        'force_name = "North Constabulary"\nport = 9443\n'
        '[[operators]]\nusername = "carol"\npassword = "pw"\nroles = ["supervisor"]\n'
    )
    monkeypatch.setenv("SCENELINK_CONFIG", str(config))
    monkeypatch.setenv("SCENELINK_PORT", "9000")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/0")
    monkeypatch.setenv("SCENELINK_ICE_SERVERS", json.dumps([{"urls": ["stun:stun.example:3478"]}]))
    settings = load_settings()
    assert settings.force_name == "North Constabulary"
    assert settings.port == 9000  # the environment wins over the file
    assert settings.redis_url == "redis://example:6379/0"
    assert settings.operators[0].roles == ["supervisor"]
    assert settings.ice_servers[0].urls == ["stun:stun.example:3478"]


def test_unknown_setting_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('forse_name = "typo"\n')
    monkeypatch.setenv("SCENELINK_CONFIG", str(config))
    with pytest.raises(ValueError, match="forse_name"):
        load_settings()


def test_users_cli_creates_disables_and_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from signalling.operators.accounts import AccountBook, check_password

    monkeypatch.setenv("SCENELINK_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert main(["users", "add", "frank", "--role", "officer", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "add", "gina", "--role", "admin", "--password-stdin"]) == 2
    assert main(["users", "disable", "frank"]) == 0
    assert main(["users", "list"]) == 0
    assert "frank\tofficer\tdisabled" in capsys.readouterr().out
    frank = AccountBook(tmp_path / "accounts.json").get("frank")
    assert frank is not None and not check_password(frank, "a long passphrase")


@pytest.mark.parametrize(("command", "module"), [("bench", "bench.media"), ("load", "bench.load")])
def test_bench_commands_pass_their_flags_on(
    command: str, module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    monkeypatch.setattr(importlib.import_module(module), "main", fake_main)
    assert main([command, "--quick", "--seconds", "2", "-h"]) == 7
    assert main(["--log-level", "WARNING", command]) == 7
    assert seen == [["--quick", "--seconds", "2", "-h"], []]


def test_other_commands_still_refuse_unknown_flags() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["dev-cert", "--quick"])
    assert exit_info.value.code == 2
