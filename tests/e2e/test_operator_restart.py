"""Killing the operator while a benchmark Job runs, and starting it again, ends with exactly one
Job per pool and the same final state: names are deterministic and state is read back."""

from __future__ import annotations

import signal
import time

import pytest
from e2e_helpers import inference_deployment, start_operator_process, wait_condition

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BENCH = "hybridplace.io/component=benchmark"


def test_kill_during_benchmark_then_restart(pools, kubectl, kubeconfig, tmp_path, wait_until):
    log = tmp_path / "operator.log"
    first = start_operator_process(kubeconfig, log)
    try:
        # A benchmark long enough to be caught running.
        kubectl.apply(inference_deployment("restarted", benchmark={"batchSizes": [1, 2, 4, 8, 16],
                                                                    "durationSeconds": 1.5}))
        wait_until(lambda: any(p["status"].get("phase") == "Running"
                               for p in kubectl.json("pods", "-l", BENCH)["items"]),
                   timeout=120, what="a benchmark pod running")
        # Events are posted from a thread of their own; a kill may lose what is still queued
        # (as with client-go's recorder). Both must be out before the kill, so that the count
        # after the restart says whether the restarted operator announced the Jobs again.
        wait_until(lambda: len([e for e in kubectl.events("restarted") if e["reason"] == "BenchmarkStarted"]) == 2,
                   timeout=60, what="both benchmarks announced")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    time.sleep(1)
    second = start_operator_process(kubeconfig, log)
    try:
        wait_condition(kubectl, "restarted", "Ready", timeout=300)
    finally:
        second.terminate()
        second.wait(timeout=30)
    jobs = kubectl.json("jobs", "-l", BENCH)["items"]
    pools_of_jobs = sorted(j["metadata"]["labels"]["hybridplace.io/pool"] for j in jobs)
    assert pools_of_jobs == ["cpu-standard", "gpu-t4"], pools_of_jobs
    assert [p["spec"]["pool"] for p in kubectl.json("mprof")["items"]] == ["cpu-standard"]
    status = kubectl.json("infd", "restarted")["status"]
    assert [p["pool"] for p in status["decision"]["placements"]] == ["cpu-standard"]
    started = [e for e in kubectl.events("restarted") if e["reason"] == "BenchmarkStarted"]
    assert len(started) == 2, started
    assert "Traceback" not in log.read_text()
