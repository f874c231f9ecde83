"""SCENELINK_LOG_FORMAT=json: every line `scenelink serve` logs is one JSON object."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import aiohttp

from tests.harness import free_port, running


async def test_json_logs_from_a_real_server(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_DATA_DIR": str(tmp_path / "data"),
        "SCENELINK_LOG_FORMAT": "json",
    }
    command = [sys.executable, "-m", "signalling.cli.main", "serve"]
    with running(command, port, tmp_path / "server.log", env=env):
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
    lines = (tmp_path / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert all({"timestamp", "level", "logger", "message"} <= set(r) for r in records)
    messages = [r["message"] for r in records]
    assert any("SCENELINK_PUBLIC_URL is not set" in m for m in messages)
    access = [r for r in records if r["logger"] == "aiohttp.access"]
    assert any('"GET /healthz" 200' in r["message"] for r in access)
