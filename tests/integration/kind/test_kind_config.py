"""The kind config (cluster/kind/config.yaml) as kind itself reads it: hack/kindcheck runs kind's
own Create (sigs.k8s.io/kind v0.33.0, from the Go module proxy) with a stand-in docker, so kind's
strict loader and validation accept or reject the file before anything would be provisioned
(kind cannot run here: no container runtime). And its node pools are the ones the example
HardwarePools select and tolerate."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CONFIG = REPO / "cluster" / "kind" / "config.yaml"


@pytest.fixture(scope="module")
def kindcheck(tmp_path_factory):
    if not shutil.which("go"):
        pytest.fail("go is needed to build hack/kindcheck (sigs.k8s.io/kind's loader)", pytrace=False)
    binary = tmp_path_factory.mktemp("kindcheck") / "kindcheck"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=REPO / "hack" / "kindcheck", check=True,
                   timeout=600, env={**os.environ, "GOFLAGS": "-mod=readonly"})
    return binary


def check(kindcheck, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(kindcheck), str(path)], capture_output=True, text=True, timeout=60)


def test_kind_accepts_the_config(kindcheck):
    result = check(kindcheck, CONFIG)
    assert result.returncode == 0 and result.stdout.startswith("ACCEPTED"), result.stdout + result.stderr
    assert "kindest/node" in result.stdout  # it got as far as the node image: past load and validate


@pytest.mark.parametrize("broken, says", [
    # kind has no taints field: its strict decoder refuses unknown fields
    (lambda c: c["nodes"][3].update(taints=[{"key": "nvidia.com/gpu"}]), "field taints not found"),
    (lambda c: c["nodes"][1].update(role="gpu-worker"), "role"),  # validation: unknown role
    (lambda c: c.update(apiVersion="kind.x-k8s.io/v1alpha3"), "unknown apiVersion"),
])
def test_kind_rejects_a_broken_config(kindcheck, tmp_path, broken, says):
    config = yaml.safe_load(CONFIG.read_text())
    broken(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = check(kindcheck, path)
    assert result.returncode == 1 and result.stdout.startswith("REJECTED"), result.stdout + result.stderr
    assert says in result.stdout, result.stdout


def _taints(node: dict) -> list[dict]:
    taints = []
    for patch in node.get("kubeadmConfigPatches", []):
        doc = yaml.safe_load(patch)
        if doc.get("kind") == "JoinConfiguration":
            taints += doc["nodeRegistration"].get("taints", [])
    return taints


def _tolerates(tolerations: list[dict], taint: dict) -> bool:
    return any(t["key"] == taint["key"] and t.get("effect") == taint["effect"]
               and (t.get("operator") == "Exists" or t.get("value") == taint.get("value")) for t in tolerations)


def test_every_example_pool_has_kind_workers_it_selects_and_tolerates():
    workers = [n for n in yaml.safe_load(CONFIG.read_text())["nodes"] if n["role"] == "worker"]
    pools = [p for p in yaml.safe_load_all((REPO / "examples" / "hardwarepools.yaml").read_text()) if p]
    for pool in pools:
        spec = pool["spec"]
        chosen = [n for n in workers if spec["nodeSelector"].items() <= n.get("labels", {}).items()]
        assert chosen, f"no kind worker for HardwarePool {pool['metadata']['name']}"
        for node in chosen:
            assert all(_tolerates(spec.get("tolerations", []), t) for t in _taints(node))
            if spec["accelerator"]["type"] == "nvidia-gpu":  # labelled as GPU feature discovery would
                assert node["labels"]["nvidia.com/gpu.product"] == spec["accelerator"]["product"]
                assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in _taints(node)
            else:
                assert not _taints(node) and "nvidia.com/gpu.present" not in node["labels"]
