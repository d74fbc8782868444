"""The Helm chart: lints, renders, carries exactly crds/, and its RBAC is enough for the real
operator: the operator runs with the chart's ServiceAccount token and places an
InferenceDeployment without a single Forbidden."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "hybridplace"


@pytest.fixture(scope="module")
def helm():
    out = subprocess.run([str(REPO / "cluster" / "tools" / "build.sh"), "helm"], capture_output=True, text=True,
                         check=True, timeout=3600)
    return str(Path(out.stdout.strip().splitlines()[-1]) / "helm")


def render(helm, namespace, *values):
    sets = [x for v in values for x in ("--set", v)]
    out = subprocess.run([helm, "template", "hp", str(CHART), "--namespace", namespace, *sets],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_lints(helm):
    result = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_crds_are_the_crds_folder_plus_keep(helm):
    rendered = {d["metadata"]["name"]: d for d in render(helm, "x") if d["kind"] == "CustomResourceDefinition"}
    source = {d["metadata"]["name"]: d for p in sorted((REPO / "crds").glob("*.yaml"))
              for d in [yaml.safe_load(p.read_text())]}
    assert rendered.keys() == source.keys()
    for name, crd in rendered.items():
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd == source[name]
    assert not [d for d in render(helm, "x", "crds.install=false") if d["kind"] == "CustomResourceDefinition"]
    check = subprocess.run([sys.executable, str(REPO / "hack" / "chart-crds.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout


def test_settings_become_environment_and_the_pod_is_restricted(helm):
    (deployment,) = [d for d in render(helm, "x", "settings.resyncSeconds=42", "settings.namespaces=a\\,b")
                     if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["HP_RESYNC_SECONDS"] == "42" and env["HP_NAMESPACES"] == "a,b"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def _token_kubeconfig(kubeconfig: str, token: str, path: Path) -> str:
    admin = yaml.safe_load(Path(kubeconfig).read_text())
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "local", "cluster": cluster["cluster"]}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "local", "user": "sa"}}],
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_the_operator_works_with_the_charts_rbac(helm, crds, kubeconfig, namespace, tmp_path, wait_until):
    kubectl = crds
    docs = [d for d in render(helm, namespace, "crds.install=false")
            if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    for doc in docs:  # unique cluster-scoped names per test namespace
        if doc["kind"] != "ServiceAccount":
            doc["metadata"]["name"] = f"hp-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"hp-{namespace}"
    listed = {"apiVersion": "v1", "kind": "List", "items": docs}
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(listed), text=True, check=True, capture_output=True)
    try:
        sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
        token = subprocess.run([*kubectl, "create", "token", sa, "-n", namespace, "--duration", "1h"],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert base64.urlsafe_b64decode(token.split(".")[1] + "==")  # a JWT
        sa_config = _token_kubeconfig(kubeconfig, token, tmp_path / "sa.kubeconfig")
        subprocess.run([*kubectl, "apply", "-f", str(REPO / "examples" / "hardwarepools.yaml")], check=True,
                       capture_output=True)
        for doc in ("seed/modelprofiles.yaml", "seed/inferencedeployment.yaml"):
            subprocess.run([*kubectl, "apply", "-n", namespace, "-f", str(REPO / "examples" / doc)], check=True,
                           capture_output=True)
        subprocess.run([*kubectl, "patch", "infd", "seed", "-n", namespace, "--type=merge", "-p",
                        '{"spec":{"placement":{"mode":"Apply"}}}'], check=True, capture_output=True)
        log = tmp_path / "operator.log"
        env = {**os.environ, "KUBECONFIG": sa_config, "HP_NAMESPACES": namespace}
        operator = subprocess.Popen([sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", sa_config,
                                     "--liveness", ""], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
        try:
            def ready():
                out = subprocess.run([*kubectl, "get", "infd", "seed", "-n", namespace, "-o",
                                      "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                                     capture_output=True, text=True).stdout
                return out == "True"

            wait_until(ready, timeout=90, what="Ready=True with the chart's RBAC")
            time.sleep(2)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
        text = log.read_text()
        assert "Forbidden" not in text and " 403" not in text, text[-3000:]
        deployments = json.loads(subprocess.run([*kubectl, "get", "deployments", "-n", namespace, "-o", "json"],
                                                capture_output=True, text=True, check=True).stdout)["items"]
        assert deployments and deployments[0]["metadata"]["labels"]["hybridplace.io/inferencedeployment"] == "seed"
    finally:
        for doc in docs:
            if doc["kind"] != "ServiceAccount":
                subprocess.run([*kubectl, "delete", doc["kind"], doc["metadata"]["name"]], capture_output=True)


def test_the_benchmark_egress_policy_is_optional_and_limits_benchmark_pods(helm):
    assert not [d for d in render(helm, "x") if d["kind"] == "NetworkPolicy"]
    docs = [d for d in render(helm, "x", "benchmarkEgress.enabled=true", "benchmarkEgress.namespaces={a,b}",
                              "benchmarkEgress.modelHostCIDRs={203.0.113.0/24}") if d["kind"] == "NetworkPolicy"]
    assert sorted(d["metadata"]["namespace"] for d in docs) == ["a", "b"]
    spec = docs[0]["spec"]
    assert spec["podSelector"]["matchLabels"]["hybridplace.io/component"] == "benchmark"
    assert spec["policyTypes"] == ["Egress"]
    assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
