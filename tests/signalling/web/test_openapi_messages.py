"""The OpenAPI document describes the messages that are not HTTP requests (each WebSocket and
the caller's data channel, each way) and the event webhook's payloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from signalling.config import load_settings
from signalling.web.app import make_app
from signalling.web.messages import CHANNELS
from signalling.web.openapi import build_openapi
from signalling.webhooks import WEBHOOK_PAYLOADS


def document(tmp_path: Path) -> dict[str, Any]:
    app = make_app(load_settings(data_dir=tmp_path))
    return build_openapi(app, "SceneLink API", "test", CHANNELS, WEBHOOK_PAYLOADS)


def members(doc: dict[str, Any], ref: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The messages a union's reference names, by their ``type`` (or ``event``)."""
    schemas = doc["components"]["schemas"]
    union = schemas[ref["$ref"].rsplit("/", 1)[1]]
    found = {}
    for option in union.get("anyOf", [union]):
        schema = schemas[option["$ref"].rsplit("/", 1)[1]]
        key = "type" if "type" in schema["properties"] else "event"
        found[schema["properties"][key]["const"]] = schema
    return found


def test_every_socket_and_the_data_channel_is_described_each_way(tmp_path: Path) -> None:
    doc = document(tmp_path)
    channels = doc["x-channels"]
    assert set(channels) == {"console", "officer", "caller"}
    console = members(doc, channels["console"]["server_to_client"])
    assert {"trail", "fix", "place", "state", "share_ended"} <= set(console)
    assert "session" in console["state"]["required"]
    officer_in = members(doc, channels["officer"]["client_to_server"])
    assert set(officer_in) == {"auth", "position"}
    assert {"bearing", "access_ended"} <= set(members(doc, channels["officer"]["server_to_client"]))
    caller_out = members(doc, channels["caller"]["client_to_server"])
    assert set(caller_out) == {"fix", "caller_state", "chat", "chat_receipt", "chat_sync", "silent"}
    assert {"lat", "lon", "accuracy", "timestamp", "type"} == set(caller_out["fix"]["required"])
    assert "declined" in caller_out["caller_state"]["required"]
    to_caller = members(doc, channels["caller"]["server_to_client"])
    assert {"ended", "photo_request", "chat", "chat_state", "chat_error", "silent"} <= set(
        to_caller
    )
    for route in ("/api/sessions/{session_id}/ws", "/api/officer/ws"):
        assert doc["paths"][route]["get"]["x-messages"]["server_to_client"]["$ref"]


def test_the_webhook_payloads_are_documented_without_a_phone_number(tmp_path: Path) -> None:
    doc = document(tmp_path)
    hooks = doc["webhooks"]
    assert set(hooks) == {
        "session_created",
        "link_opened",
        "live",
        "ended",
        "bundle_ready",
        "export_ready",
    }
    schemas = doc["components"]["schemas"]
    for event, hook in hooks.items():
        post = hook["post"]
        assert post["parameters"][0]["name"] == "X-SceneLink-Signature"
        name = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
        schema = schemas[name]
        assert schema["properties"]["event"]["const"] == event
        assert {"id", "sequence", "at"} <= set(schema["required"])
        assert not {"phone", "to", "token_id"} & set(schema["properties"])
