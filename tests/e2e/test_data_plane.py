"""The local data plane end to end: the operator's serving pods run real tritonservers at their
own loopback pod IPs, answer like the model, are restarted when they crash, leave nothing behind
when deleted, and Prometheus counts what the load generator sent (docs/local-cluster.md)."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from e2e_helpers import inference_deployment, wait_condition

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SCRAPE_INTERVAL_S = 5
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def serving_pods(kubectl, name):
    return kubectl.json("pods", "-l", f"hybridplace.io/inferencedeployment={name}")["items"]


def ready_pod(kubectl, name):
    for pod in serving_pods(kubectl, name):
        conds = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        if conds.get("Ready") == "True" and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


def pid_of(pod) -> int:
    return int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("local://"))


def group_alive(pgid: int) -> bool:
    """Is any process of the process group `pgid` (a container and its children) alive?"""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pgid:
                    return True
            except (ProcessLookupError, PermissionError):
                continue
    return False


def test_a_serving_pod_answers_like_the_model_and_prometheus_counts_the_load(
        operator, kubectl, namespace, wait_until, prometheus_url, kubeconfig):
    from hybridplace.controller.observe import PrometheusObserver
    from hybridplace_worker.models import load_model

    kubectl.apply(inference_deployment("answer", placement={"pools": ["cpu-standard"]}))
    wait_condition(kubectl, "answer", "Ready", timeout=240)
    pod = wait_until(lambda: ready_pod(kubectl, "answer"), timeout=60, what="a Ready serving pod")
    ip = pod["status"]["podIP"]
    assert ipaddress.ip_address(ip) in LOOPBACK
    # The container's process is tritonserver itself (serve execs it), bound at the pod's IP.
    cmdline = Path(f"/proc/{pid_of(pod)}/cmdline").read_bytes().split(b"\0")
    assert cmdline[0].endswith(b"tritonserver") and f"--http-address={ip}".encode() in cmdline

    # An inference request returns what the model computes in-process.
    import tritonclient.http as httpclient

    x = np.random.default_rng(7).standard_normal((1, 256)).astype(np.float32)  # the decision may batch 1
    client = httpclient.InferenceServerClient(f"{ip}:8000")
    request = httpclient.InferInput("input", list(x.shape), "FP32")
    request.set_data_from_numpy(x)
    served = client.infer("model", [request]).as_numpy("output")
    import torch

    expected = load_model("builtin:mlp", digest=None, format="torchscript", inputs=[]).module(torch.from_numpy(x))
    np.testing.assert_allclose(served, expected.detach().numpy(), rtol=1e-4, atol=1e-5)

    # The load generator's requests all show in Prometheus within two scrape intervals.
    out = subprocess.run(
        [sys.executable, "-m", "hybridplace.cli", "loadgen", "answer", "-n", namespace, "--rps", "20",
         "--seconds", "5", "--seed", "1", "-o", "json", "--kubeconfig", kubeconfig],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout)
    assert sent["sent"] == 100 and sent["ok"] == 100, sent
    done = time.monotonic()
    observer = PrometheusObserver(prometheus_url)
    seen = wait_until(lambda: (observer.observe(namespace, "answer").requests or 0) >= sent["ok"] + 1,
                      timeout=2 * SCRAPE_INTERVAL_S + 2, interval=0.5,
                      what="Prometheus to count every request")
    assert seen and time.monotonic() - done <= 2 * SCRAPE_INTERVAL_S + 2
    obs = observer.observe(namespace, "answer")
    assert obs.requests == sent["ok"] + 1  # the load and the one request above, no more
    assert obs.latency_ms is not None and obs.latency_ms > 0 and obs.by_pool.keys() == {"cpu-standard"}


def test_a_killed_server_is_restarted_and_a_deleted_deployment_leaves_nothing(
        operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("phoenix", model={"builtin": "delay"}, placement={"pools": ["cpu-standard"]}))
    wait_condition(kubectl, "phoenix", "Ready", timeout=240)
    pod = wait_until(lambda: ready_pod(kubectl, "phoenix"), timeout=60, what="a Ready serving pod")
    name, pid = pod["metadata"]["name"], pid_of(pod)
    os.kill(pid, signal.SIGKILL)

    def ready_state():
        p = kubectl.json("pod", name)
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions") or []}
        return conds.get("Ready"), p["status"]["containerStatuses"][0]["restartCount"]

    wait_until(lambda: ready_state()[0] == "False", timeout=15, interval=0.2, what="the pod to go not Ready")
    wait_until(lambda: ready_state() == ("True", 1), timeout=90, what="the pod to be Ready again after a restart")
    new_pid = pid_of(kubectl.json("pod", name))
    assert new_pid != pid

    # Deleting the InferenceDeployment deletes its Deployment and pods; their processes go.
    kubectl("delete", "infd", "phoenix", "--wait=false")
    wait_until(lambda: not group_alive(new_pid), timeout=60, what="the serving processes to exit")
    wait_until(lambda: not serving_pods(kubectl, "phoenix"), timeout=60, what="the pods to go")
