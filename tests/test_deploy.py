"""The deploy examples (deploy/compose, deploy/k8s) against the code: every setting they
set is a real one, their probes call real public routes, and their parts fit together."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from signalling.config import Settings, load_settings
from signalling.web.app import make_app
from signalling.web.permissions import rule_for

DEPLOY = Path(__file__).parent.parent / "deploy"
# Read by libraries, not by signalling/config.py: boto3 (the S3 store), the pod's own address.
OTHER_NAMES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "POD_IP"}


def setting_names() -> set[str]:
    names = set()
    for field, info in Settings.model_fields.items():
        names.add(f"SCENELINK_{field.upper()}")
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return names


def public_routes() -> set[str]:
    """GET routes served without sign-in, as registered."""
    app = make_app(load_settings(data_dir=Path("/tmp/unused-scenelink")))
    return {
        r.resource.canonical
        for r in app.router.routes()
        if r.resource is not None
        and r.method == "GET"
        and rule_for("GET", r.resource.canonical) == "public"
    }


def load_all(path: Path) -> list[Any]:
    return list(yaml.safe_load_all(path.read_text()))


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process given ``env`` would read (compose's ${VAR} filled in)."""
    for name in setting_names() | {"SCENELINK_CONFIG"}:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, re.sub(r"\$\{[^}]*\}", "example", str(value)))
    return load_settings()


def test_compose_runs_two_nodes_with_redis_coturn_and_an_object_lock_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compose = load_all(DEPLOY / "compose" / "docker-compose.yml")[0]
    services: dict[str, Any] = compose["services"]
    nodes = {name: s for name, s in services.items() if s.get("build", {}).get("context")}
    assert len(nodes) == 2
    assert (DEPLOY / "compose" / nodes["node-a"]["build"]["context"] / "Dockerfile").exists()
    images = {s["image"].split(":")[0] for s in services.values() if "build" not in s}
    assert images == {"redis", "minio/minio", "minio/mc", "coturn/coturn"}
    init = next(s for s in services.values() if s["image"].startswith("minio/mc"))
    assert "--with-lock" in " ".join(init["command"])
    names, routes = setting_names(), public_routes()
    ports = set()
    for name, node in nodes.items():
        env: dict[str, str] = node["environment"]
        unknown = {key for key in env if key not in names | OTHER_NAMES}
        assert unknown == set(), name
        settings = settings_from(env, monkeypatch)  # every value valid, the set complete
        assert settings.redis_url and settings.s3_bucket and settings.metrics_token
        assert node["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
        ports |= {settings.port, settings.internal_port}
        check = " ".join(node["healthcheck"]["test"])
        (url,) = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)'", check)
        assert url == (str(settings.port), "/readyz") and url[1] in routes
    assert len(ports) == 4  # the two nodes share the host's network: no port twice
    secrets = re.findall(r"\$\{(\w+)", (DEPLOY / "compose" / "docker-compose.yml").read_text())
    example = (DEPLOY / "compose" / "example.env").read_text()
    assert {s for s in secrets if f"\n{s}=" not in f"\n{example}"} == set()


def test_kubernetes_probes_settings_and_selectors_agree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = DEPLOY / "k8s"
    kustomization = load_all(folder / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    docs = {
        doc["kind"]: doc for name in kustomization["resources"] for doc in load_all(folder / name)
    }
    names, routes = setting_names(), public_routes()
    for kind in ("ConfigMap", "Secret"):
        data = docs[kind].get("data") or docs[kind]["stringData"]
        assert set(data) - names - OTHER_NAMES == set(), kind
    settings = settings_from(docs["ConfigMap"]["data"] | docs["Secret"]["stringData"], monkeypatch)
    assert settings.redis_url and settings.s3_bucket and settings.metrics_token

    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert pod["spec"]["hostNetwork"] is True
    (container,) = pod["spec"]["containers"]
    assert {e["name"] for e in container["env"]} - names - OTHER_NAMES == set()
    refs = {r[k]["name"] for r in container["envFrom"] for k in r}
    assert refs == {docs["ConfigMap"]["metadata"]["name"], docs["Secret"]["metadata"]["name"]}
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert str(port_names["http"]) == docs["ConfigMap"]["data"]["SCENELINK_PORT"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and path in routes and get["port"] in port_names
    # The readiness probe waits longer than the server's own deadline for a check.
    assert container["readinessProbe"]["timeoutSeconds"] > settings.ready_timeout_s
    # The pod is given the time its drain takes.
    assert pod["spec"]["terminationGracePeriodSeconds"] > settings.drain_s
