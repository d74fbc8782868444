"""The operator's /metrics, scraped by the local cluster's real Prometheus from the real operator:
the gauges Prometheus stores equal what the operator wrote in the status (a decision that costs
0.6048 USD/h shows 0.6048), and the counters move."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from e2e_helpers import (
    Kubectl,
    free_port,
    prometheus_query,
    running_operator,
    scraped_by_prometheus,
    wait_condition,
)

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed"


@pytest.fixture(scope="module")
def metrics_port():
    return free_port()


@pytest.fixture(scope="module")
def operator(pools, kubeconfig, local_cluster, metrics_port):
    """The operator with its metrics on a free port, scraped by the cluster's Prometheus."""
    with running_operator(kubeconfig, HP_METRICS_PORT=str(metrics_port)) as runner, \
            scraped_by_prometheus(local_cluster.state_dir, metrics_port):
        yield runner


def wait_series(prometheus_url: str, promql: str, timeout: float = 60) -> list[dict]:
    """Poll Prometheus until the query returns a series (the scrape interval is 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = prometheus_query(prometheus_url, promql)
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus returned nothing for {promql} in {timeout} s", pytrace=False)
        time.sleep(1)


def value(series: dict) -> float:
    return float(series["value"][1])


def test_the_scraped_decision_gauges_equal_the_status(operator, crds, namespace, prometheus_url, metrics_port):
    kubectl = Kubectl(crds, namespace)
    subprocess.run([*crds, "-n", namespace, "apply", "-f", str(SEED)], check=True, capture_output=True,
                   timeout=60)
    wait_condition(kubectl, "seed", "Placed")
    decision = kubectl.json("infd", "seed")["status"]["decision"]
    # The seed example at 50 requests/s: three CPU replicas, 0.6048 USD/h (docs/cli.md).
    assert decision["totalCostPerHour"] == pytest.approx(0.6048)
    who = f'namespace="{namespace}",name="seed"'
    cost = wait_series(prometheus_url, f"hybridplace_decision_cost_usd_per_hour{{{who}}}")
    assert [value(s) for s in cost] == [decision["totalCostPerHour"]]
    for metric, field in (("hybridplace_decision_cost_usd_per_million", "costPerMillion"),
                          ("hybridplace_decision_watts", "totalWatts"),
                          ("hybridplace_decision_watt_hours_per_million", "wattHoursPerMillion")):
        assert [value(s) for s in prometheus_query(prometheus_url, f"{metric}{{{who}}}")] == [decision[field]], metric
    for placement in decision["placements"]:
        where = f'{who},pool="{placement["pool"]}"'
        for metric, field in (("hybridplace_decision_replicas", "replicas"),
                              ("hybridplace_decision_predicted_latency_milliseconds", "predictedLatencyMs"),
                              ("hybridplace_decision_pool_cost_usd_per_hour", "costPerHour")):
            got = [value(s) for s in prometheus_query(prometheus_url, f"{metric}{{{where}}}")]
            assert got == [placement[field]], (metric, placement["pool"])
    slo = prometheus_query(prometheus_url, f'hybridplace_slo_latency_milliseconds{{{who},percentile="95"}}')
    assert [value(s) for s in slo] == [1000.0]
    # What the operator did is counted: reconciles of this deployment, API calls, no errors here.
    reconciles = prometheus_query(prometheus_url, 'hybridplace_reconcile_total{kind="infd"}')
    assert reconciles and value(reconciles[0]) >= 1
    assert prometheus_query(prometheus_url, 'hybridplace_api_requests_total{verb="PATCH",'
                                            'resource="inferencedeployments/status",result="200"}')
    # The endpoint itself, read directly, says the same.
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    assert f'hybridplace_decision_cost_usd_per_hour{{name="seed",namespace="{namespace}"}} 0.6048' in text


def test_a_changed_decision_changes_the_gauge(operator, crds, namespace, prometheus_url):
    kubectl = Kubectl(crds, namespace)
    subprocess.run([*crds, "-n", namespace, "apply", "-f", str(SEED)], check=True, capture_output=True,
                   timeout=60)
    wait_condition(kubectl, "seed", "Placed")
    kubectl("patch", "infd", "seed", "--type=merge", "-p", '{"spec": {"load": {"targetRps": 100}}}')
    deadline = time.monotonic() + 60
    while True:
        decision = kubectl.json("infd", "seed")["status"]["decision"]
        if [p["pool"] for p in decision["placements"]] == ["gpu-t4"]:
            break
        assert time.monotonic() < deadline, f"the decision did not move to the GPU: {decision['placements']}"
        time.sleep(1)
    who = f'namespace="{namespace}",name="seed",pool="gpu-t4"'
    replicas = wait_series(prometheus_url, f"hybridplace_decision_replicas{{{who}}}")
    assert [value(s) for s in replicas] == [decision["placements"][0]["replicas"]]
    # The CPU pool is no longer in the decision: its series is gone, not left at its old value.
    gone = f'hybridplace_decision_replicas{{namespace="{namespace}",name="seed",pool="cpu-standard"}}'
    deadline = time.monotonic() + 30
    while prometheus_query(prometheus_url, gone):
        assert time.monotonic() < deadline, "the CPU pool's replicas series stayed"
        time.sleep(1)
