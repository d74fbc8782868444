"""Calibration end to end: the fixed-service-time model served by real pods, an imported profile
that says it is twice as fast as it is, real Prometheus, the load generator. The operator finds
the observed latency off the prediction, corrects it (more replicas, until the observed p95 is
within the SLO), says so in an Event, and measures the pool again when the ratio persists.
Short warm-up and re-profiling window here (20 s, 30 s); the defaults are 90 s and 600 s."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from e2e_helpers import inference_deployment, running_operator, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

SLO_MS = 60


@pytest.fixture(scope="module")
def calibrating_operator(pools, kubeconfig, prometheus_url):
    with running_operator(kubeconfig, HP_PROMETHEUS_URL=prometheus_url, HP_CALIBRATION_WARMUP_SECONDS="20",
                          HP_CALIBRATION_REPROFILE_SECONDS="30") as runner:
        yield runner


def optimistic_profile(namespace: str) -> dict:
    """builtin:delay on cpu-standard as if it served a request in 10.6 ms: it takes 21."""
    from hybridplace.api.builtins import builtin_digest

    digest = builtin_digest("delay")
    hex_ = digest.split(":", 1)[1]
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    return {"apiVersion": "hybridplace.io/v1alpha1", "kind": "ModelProfile",
            "metadata": {"name": f"mp-{hex_[:12]}-cpu-standard", "namespace": namespace,
                         "labels": {"hybridplace.io/pool": "cpu-standard", "hybridplace.io/digest": hex_[:40]}},
            "spec": {"model": {"digest": digest, "name": "builtin:delay", "format": "torchscript"},
                     "pool": "cpu-standard", "engine": "torch", "measuredAt": measured_at,
                     "device": {"accelerator": "cpu", "name": "CPU (claimed)"}, "provenance": "imported",
                     "source": "e2e: builtin:delay claimed twice as fast as it is",
                     "points": [{"batchSize": 1, "concurrency": 1, "p50Ms": 10.6, "p95Ms": 10.7, "p99Ms": 11.6,
                                 "throughputRps": 94.3, "throughputIps": 94.3, "spread": 0.02, "stable": True}]}}


def test_a_model_slower_than_its_profile_is_calibrated_scaled_and_measured_again(
        calibrating_operator, kubectl, namespace, kubeconfig, wait_until):
    name = "slowpoke"
    kubectl.apply(optimistic_profile(namespace))
    kubectl.apply(inference_deployment(
        name, model={"builtin": "delay"}, slo={"percentile": 95, "latencyMs": SLO_MS},
        load={"targetRps": 30, "minReplicas": 1, "maxReplicas": 6}, placement={"pools": ["cpu-standard"]},
        benchmark={"batchSizes": [1], "durationSeconds": 0.5},
        scaling={"mode": "Operator", "intervalSeconds": 5, "scaleDownDelaySeconds": 300}))
    wait_condition(kubectl, name, "Ready", timeout=180)
    status = kubectl.json("infd", name)["status"]
    assert sum(p["replicas"] for p in status["decision"]["placements"]) == 1  # what the profile says 30 need

    stop = threading.Event()

    def load():  # 30 requests/s, in 60 s runs, until the test is done
        while not stop.is_set():
            subprocess.run([sys.executable, "-m", "hybridplace.cli", "loadgen", name, "-n", namespace, "--rps", "30",
                            "--seconds", "60", "--kubeconfig", kubeconfig], capture_output=True, timeout=200)

    sender = threading.Thread(target=load, daemon=True)
    sender.start()
    try:
        def calibration():
            found = (kubectl.json("infd", name).get("status") or {}).get("calibration") or []
            return next((c for c in found if c["pool"] == "cpu-standard"), None)

        first = wait_until(calibration, timeout=150, interval=2, what="a calibration of cpu-standard")
        assert first["ratio"] >= 1.5, first  # the pods are twice as slow as the profile says (and more, queued)
        event = wait_event(kubectl, name, "Calibrated")
        assert "x the model's prediction" in event["message"]
        wait_until(lambda: sum(p["replicas"] for p in kubectl.json("infd", name)["status"]["decision"]["placements"])
                   >= 2, timeout=60, what="more replicas for the corrected prediction")
        # The observed p95 comes within the SLO (Triton's summary forgets the one-replica minute).
        wait_until(lambda: ((kubectl.json("infd", name).get("status") or {}).get("observed") or {}).get(
            "latencyMs", 1e9) <= SLO_MS, timeout=180, interval=2, what=f"the observed p95 within {SLO_MS} ms")
        # Outside [0.67, 1.5] for longer than the window (30 s here): the pool is measured again.
        reprofiling = wait_event(kubectl, name, "Reprofiling", timeout=120)
        assert "calibration" in reprofiling["message"]
    finally:
        stop.set()
        sender.join(timeout=200)
