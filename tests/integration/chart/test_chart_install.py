"""`helm install` of the chart on a local cluster of its own (so the CRDs are the chart's, from
nothing), the install proved, then `helm uninstall`, which keeps the CRDs and the objects in them.

Pods never run on the local cluster (kwok marks the operator's pod Running; docs/local-cluster.md),
so the operator runs as a local process with the installed ServiceAccount's token and the
installed Deployment's environment, and the chart's `helm test` hook command runs as a local
process against it (the one thing changed: the Service's address, which has no route here, for
the operator's metrics port). On a cluster that runs pods, `helm test <release>` runs the same.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cases.chart_support import seed_as_delay, token_kubeconfig

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "hybridplace"
LOCALCLUSTER = REPO / "cluster" / "localcluster.py"
RELEASE, NAMESPACE = "hybridplace", "hybridplace-system"
CRDS = sorted(yaml.safe_load(p.read_text())["metadata"]["name"] for p in (REPO / "crds").glob("*.yaml"))


@pytest.fixture(scope="module")
def helm():
    out = subprocess.run([str(REPO / "cluster" / "tools" / "build.sh"), "helm"], capture_output=True, text=True,
                         check=True, timeout=3600)
    return str(Path(out.stdout.strip().splitlines()[-1]) / "helm")


@pytest.fixture(scope="module")
def fresh_cluster():
    """A local cluster with no CRDs, no pod runner and no Prometheus, stopped afterwards."""
    name = f"{os.environ.get('HP_CLUSTER', 'hybridplace')}-helm"
    session = ["--name", name, "--session", str(os.getpid())]
    up = subprocess.run([sys.executable, str(LOCALCLUSTER), "up", "--json", "--no-runner", "--no-prometheus",
                         *session], stdout=subprocess.PIPE, text=True, timeout=3600)
    if up.returncode != 0:
        pytest.fail(f"local cluster '{name}' did not come up (exit {up.returncode})", pytrace=False)
    info = json.loads(up.stdout)
    yield info["kubeconfig"]
    subprocess.run([sys.executable, str(LOCALCLUSTER), "release", *session,
                    *(["--stop"] if info["started"] else [])], check=True, timeout=120)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=kwargs.pop("timeout", 180), **kwargs)


def check_command(hooks: list[dict], url: str, seconds: str) -> tuple[list[str], dict[str, str]]:
    """The install-check hook's command and environment, as a local process: the image's
    `python` is this one, HP_CHECK_URL the operator's metrics as reached from here."""
    (pod,) = [h for h in hooks if h["kind"] == "Pod" and h["metadata"]["annotations"]["helm.sh/hook"] == "test"]
    (container,) = pod["spec"]["containers"]
    assert container["command"][0] == "python" and container["image"].startswith("ghcr.io/hybridplace/operator:")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["HP_CHECK_URL"] == f"http://{RELEASE}-metrics.{NAMESPACE}.svc:8081/metrics"
    env.update(HP_CHECK_URL=url, HP_CHECK_SECONDS=seconds)
    return [sys.executable, *container["command"][1:]], {**os.environ, **env}


def test_helm_install_works_and_uninstall_keeps_the_crds(helm, fresh_cluster, tmp_path, wait_until):
    kubeconfig = fresh_cluster
    kubectl = [str(REPO / "cluster" / "kubectl"), "--kubeconfig", kubeconfig]
    helm_ = [helm, "--kubeconfig", kubeconfig]
    assert not [c for c in CRDS if run([*kubectl, "get", "crd", c]).returncode == 0], "not a fresh cluster"

    started = time.monotonic()
    install = run([*helm_, "install", RELEASE, str(CHART), "-n", NAMESPACE, "--create-namespace", "--wait",
                   "--timeout", "120s"])
    assert install.returncode == 0, install.stdout + install.stderr
    print(f"helm install --wait: {time.monotonic() - started:.1f} s")
    for crd in CRDS:
        established = run([*kubectl, "wait", "--for=condition=Established", "--timeout=30s", f"crd/{crd}"])
        assert established.returncode == 0, established.stderr
    deployment = json.loads(run([*kubectl, "get", "deployment", RELEASE, "-n", NAMESPACE, "-o", "json"],
                                check=True).stdout)
    assert deployment["status"].get("availableReplicas") == 1  # kwok's pod; the process runs below
    for kind, name in [("clusterrole", RELEASE), ("clusterrolebinding", RELEASE), ("role", f"{RELEASE}-own")]:
        found = run([*kubectl, "get", kind, name, "-n", NAMESPACE, "-o", "json"])
        assert found.returncode == 0, (kind, name, found.stderr)
        assert json.loads(found.stdout)["metadata"]["annotations"]["meta.helm.sh/release-name"] == RELEASE

    # The operator, as the installed Deployment runs it: its settings, its ServiceAccount's token.
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["run"]
    sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    token = run([*kubectl, "create", "token", sa, "-n", NAMESPACE, "--duration", "1h"], check=True).stdout.strip()
    sa_config = token_kubeconfig(kubeconfig, token, tmp_path / "sa.kubeconfig")
    port = free_port()
    env = {**os.environ, **{e["name"]: e.get("value", "") for e in container["env"]},
           "KUBECONFIG": sa_config, "HP_METRICS_PORT": str(port), "HP_LIVENESS": ""}
    assert env["HP_LEADER_ELECTION_NAMESPACE"] == NAMESPACE
    assert env["HP_LEADER_ELECTION_NAME"] == deployment["metadata"]["name"]  # a Lease per release
    # The pools from the release's values, with an upgrade (a first install cannot make them:
    # Helm maps every kind before the CRDs exist).
    pools = [{"name": d["metadata"]["name"], "spec": d["spec"]}
             for d in yaml.safe_load_all((REPO / "examples" / "hardwarepools.yaml").read_text()) if d]
    (tmp_path / "pools.yaml").write_text(yaml.safe_dump({"hardwarePools": pools}))
    upgrade = run([*helm_, "upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reuse-values", "-f",
                   str(tmp_path / "pools.yaml"), "--wait", "--timeout", "120s"])
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    listed = run([*kubectl, "get", "hardwarepool", "-o", "jsonpath={.items[*].metadata.name}"], check=True)
    assert sorted(listed.stdout.split()) == sorted(p["name"] for p in pools)
    run([*kubectl, "create", "namespace", "team-a"], check=True)
    run([*kubectl, "apply", "-n", "team-a", "-f", "-"], input=json.dumps(seed_as_delay()), check=True)
    log = tmp_path / "operator.log"
    operator = subprocess.Popen([sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", sa_config],
                                stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        def placed():
            return run([*kubectl, "get", "infd", "seed", "-n", "team-a", "-o",
                        "jsonpath={.status.conditions[?(@.type=='Placed')].status}"]).stdout == "True"

        wait_until(placed, timeout=120, what="Placed=True by the installed release's operator",
                   detail=lambda: log.read_text()[-2000:])
        argv, check_env = check_command(yaml.safe_load_all(run([*helm_, "get", "hooks", RELEASE, "-n", NAMESPACE],
                                                               check=True).stdout),
                                        f"http://127.0.0.1:{port}/metrics", "60")
        check = run(argv, env=check_env, timeout=90)
        assert check.returncode == 0 and check.stdout.startswith("ok:"), check.stdout + check.stderr
        lease = run([*kubectl, "get", "lease", deployment["metadata"]["name"], "-n", NAMESPACE, "-o",
                     "jsonpath={.spec.holderIdentity}"], check=True)
        assert lease.stdout, "the release's Lease has no holder"
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    text = log.read_text()
    assert "Forbidden" not in text and " 403" not in text, text[-3000:]
    # The same check fails, saying why, when no operator answers.
    argv, check_env = check_command(yaml.safe_load_all(run([*helm_, "get", "hooks", RELEASE, "-n", NAMESPACE],
                                                           check=True).stdout),
                                    f"http://127.0.0.1:{free_port()}/metrics", "3")
    failed = run(argv, env=check_env, timeout=30)
    assert failed.returncode != 0 and "install check failed" in failed.stderr, failed.stdout + failed.stderr

    uninstall = run([*helm_, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "60s"])
    assert uninstall.returncode == 0, uninstall.stdout + uninstall.stderr
    assert "kept due to the resource policy" in uninstall.stdout + uninstall.stderr
    for crd in CRDS:
        assert run([*kubectl, "get", "crd", crd]).returncode == 0, f"helm uninstall deleted {crd}"
    # ... and so every object in them: the InferenceDeployment and the release's HardwarePools
    # (resource-policy keep) survive.
    assert run([*kubectl, "get", "infd", "seed", "-n", "team-a"]).returncode == 0
    kept = run([*kubectl, "get", "hardwarepool", "-o", "jsonpath={.items[*].metadata.name}"], check=True)
    assert sorted(kept.stdout.split()) == sorted(p["name"] for p in pools)
    for kind, name in [("deployment", RELEASE), ("serviceaccount", RELEASE), ("role", f"{RELEASE}-own")]:
        gone = run([*kubectl, "get", kind, name, "-n", NAMESPACE])
        assert gone.returncode != 0 and "NotFound" in gone.stderr, (kind, gone.stdout)
    assert run([*kubectl, "get", "clusterrole", RELEASE]).returncode != 0
