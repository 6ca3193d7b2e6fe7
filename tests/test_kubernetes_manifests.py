"""deploy/kubernetes: the base and both overlays render (as `kubectl kustomize` renders them),
every object is valid against the Kubernetes schemas, and checkov's policy scan fails nothing
(its skips carry their reasons in the manifests). Validated here, not run on a cluster."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kustomize_render import Manifest, by_kind_and_name, pod_containers, render

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
LAYERS = ["base", "overlays/cpu", "overlays/gpu"]
# The Kubernetes release whose schemas the manifests are checked against.
KUBERNETES_VERSION = "1.33.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def rendered(layer: str) -> list[Manifest]:
    return render(KUBERNETES / layer)


@pytest.mark.parametrize("layer", LAYERS)
def test_the_python_rendering_is_kubectl_kustomizes(layer: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    out = subprocess.run([kubectl, "kustomize", str(KUBERNETES / layer)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    theirs = [doc for doc in yaml.safe_load_all(out) if doc]
    assert by_kind_and_name(rendered(layer)) == by_kind_and_name(theirs)


@pytest.mark.parametrize("layer", LAYERS)
def test_every_object_is_valid_against_the_kubernetes_schemas(layer: str) -> None:
    objects = rendered(layer)
    kinds = {obj["kind"] for obj in objects}
    assert {"Namespace", "ConfigMap", "Deployment", "Service", "Job", "HorizontalPodAutoscaler",
            "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", *KEDA_KINDS} <= kinds
    for obj in objects:
        if obj["kind"] in KEDA_KINDS:
            continue  # KEDA's CRDs: their schemas are not in kubernetes-validate (checked below)
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("layer", LAYERS)
def test_the_scaled_object_scales_the_worker_deployment_from_postgresql(layer: str) -> None:
    objects = by_kind_and_name(rendered(layer))
    scaled = objects[("ScaledObject", "roomrender-worker")]["spec"]
    assert ("Deployment", scaled["scaleTargetRef"]["name"]) in objects
    assert scaled["minReplicaCount"] == 0
    auth = objects[("TriggerAuthentication", "roomrender-postgres")]["spec"]["secretTargetRef"]
    assert [ref["parameter"] for ref in auth] == ["connection"]
    for trigger in scaled["triggers"]:
        assert trigger["type"] == "postgresql"
        assert trigger["authenticationRef"]["name"] == "roomrender-postgres"
        assert int(trigger["metadata"]["targetQueryValue"]) > 0
        assert trigger["metadata"]["query"].startswith("SELECT count(*) FROM jobs WHERE ")


def _container(objects: dict[tuple[str, str], Manifest], kind: str, name: str) -> dict[str, Any]:
    return pod_containers(objects[(kind, name)])[0]


@pytest.mark.parametrize("layer", LAYERS)
def test_pods_run_locked_down_with_probes_and_the_workers_grace(layer: str) -> None:
    objects = by_kind_and_name(rendered(layer))
    config = objects[("ConfigMap", "roomrender-config")]["data"]
    for kind, name in [("Deployment", "roomrender-api"), ("Deployment", "roomrender-worker"),
                       ("Job", "roomrender-db-upgrade")]:
        pod = objects[(kind, name)]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod_containers(objects[(kind, name)]):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["resources"]["requests"] and container["resources"]["limits"]
            assert container["image"].startswith("roomrender")
    for name in ("roomrender-api", "roomrender-worker"):
        container = _container(objects, "Deployment", name)
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    worker = objects[("Deployment", "roomrender-worker")]["spec"]["template"]["spec"]
    # The worker's stop grace, then time to hand jobs back or store outputs.
    assert worker["terminationGracePeriodSeconds"] >= float(
        config["ROOMRENDER_WORKER_STOP_GRACE_SECONDS"]) + 10
    assert _container(objects, "Deployment", "roomrender-worker")["ports"][0]["containerPort"] == int(
        config["ROOMRENDER_METRICS_PORT"])


def test_the_gpu_overlay_puts_diffusers_workers_on_gpus_with_a_long_warm_up() -> None:
    objects = by_kind_and_name(rendered("overlays/gpu"))
    assert objects[("ConfigMap", "roomrender-config")]["data"]["ROOMRENDER_ENGINE"] == "diffusers"
    worker = objects[("Deployment", "roomrender-worker")]["spec"]["template"]["spec"]
    container = worker["containers"][0]
    assert container["image"] == "roomrender:cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert worker["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"]
    cpu = by_kind_and_name(rendered("overlays/cpu"))
    assert _container(cpu, "Deployment", "roomrender-worker")["image"] == "roomrender:cpu"
    assert "nvidia.com/gpu" not in _container(cpu, "Deployment", "roomrender-worker")["resources"]["limits"]


def _checkov() -> str | None:
    """checkov lives in its own virtual environment (its pins clash with the dev extra's:
    `make checkov` makes .venv-checkov), or ROOMRENDER_CHECKOV names it, or it is on PATH."""
    for candidate in (os.environ.get("ROOMRENDER_CHECKOV"), str(ROOT / ".venv-checkov/bin/checkov"),
                      str(Path(sys.executable).parent / "checkov"), shutil.which("checkov")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.mark.slow
def test_checkov_fails_no_check_on_either_overlay(tmp_path: Path) -> None:
    checkov = _checkov()
    if checkov is None:
        pytest.skip("checkov is not installed (make checkov)")
    for layer in ("overlays/cpu", "overlays/gpu"):
        (tmp_path / f"{layer.replace('/', '-')}.yaml").write_text(
            yaml.safe_dump_all(rendered(layer), sort_keys=False))
    # Offline: no guideline download, no version check.
    environment = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    scan = subprocess.run([checkov, "-d", str(tmp_path), "--framework", "kubernetes",
                           "--compact", "--skip-download", "--output", "json"],
                          capture_output=True, text=True, env=environment, timeout=300)
    report = yaml.safe_load(scan.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [] and scan.returncode == 0, failed
    assert summary["passed"] > 200
    skipped = report["results"]["skipped_checks"]
    assert {c["check_id"] for c in skipped} == {"CKV_K8S_43", "CKV_K8S_35"}
    assert all(c["check_result"].get("suppress_comment") for c in skipped)
