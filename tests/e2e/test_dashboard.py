"""The Grafana dashboard (charts/hybridplace/dashboards/hybridplace.json) against the real thing:
the local Prometheus scraping the real operator, with one placed deployment serving real
requests. Every expression in the dashboard must return data; none may be empty by mistake (a
misspelt metric or label returns nothing, silently, in Grafana)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
from e2e_helpers import (
    free_port,
    inference_deployment,
    prometheus_query,
    running_operator,
    scraped_by_prometheus,
    wait_condition,
)
from test_scaling import load

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "hybridplace" / "dashboards" / "hybridplace.json"


def expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    board = json.loads(DASHBOARD.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel["targets"]]


def test_the_dashboard_shows_what_the_issue_asks_for():
    titles = " | ".join(title for title, _ in expressions()).lower()
    exprs = " ".join(expr for _, expr in expressions())
    for needed in ("cost per hour by pool", "predicted, observed and the slo", "replicas per pool",
                   "benchmark queue", "reconcile errors"):
        assert needed in titles
    for metric in ("hybridplace_decision_pool_cost_usd_per_hour", "hybridplace_decision_predicted_latency_milliseconds",
                   "hybridplace_observed_latency_milliseconds", "hybridplace_slo_latency_milliseconds",
                   "hybridplace_decision_replicas", "hybridplace_benchmark_jobs", "hybridplace_reconcile_errors_total"):
        assert metric in exprs


@pytest.fixture(scope="module")
def observed_operator(pools, kubeconfig, prometheus_url, local_cluster):
    port = free_port()
    with running_operator(kubeconfig, HP_PROMETHEUS_URL=prometheus_url, HP_METRICS_PORT=str(port)) as runner, \
            scraped_by_prometheus(local_cluster.state_dir, port):
        yield runner


def test_every_dashboard_expression_returns_data_with_one_placed_deployment(
        observed_operator, kubectl, namespace, kubeconfig, prometheus_url):
    name = "board"
    kubectl.apply(inference_deployment(
        name, model={"builtin": "delay"}, slo={"percentile": 95, "latencyMs": 300},
        load={"targetRps": 20, "minReplicas": 1, "maxReplicas": 2}, placement={"pools": ["cpu-standard"]},
        benchmark={"batchSizes": [1], "durationSeconds": 0.5},
        scaling={"mode": "Operator", "intervalSeconds": 5, "scaleDownDelaySeconds": 30}))
    wait_condition(kubectl, name, "Ready", timeout=240)
    load(kubeconfig, namespace, name, 20, 25)  # longer than the 20 s rate window
    wait_condition(kubectl, name, "Observed", timeout=60)
    empty: dict[str, str] = {}
    deadline = time.monotonic() + 90  # the operator is scraped every 5 s; rate() needs two samples
    while True:
        empty = {}
        for title, expr in expressions():
            result = prometheus_query(prometheus_url, expr)
            values = [float(series["value"][1]) for series in result]
            if not any(math.isfinite(v) for v in values):
                empty[expr] = title
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not empty, f"dashboard expressions that returned no data: {empty}"
    # And the deployment's own figures are among them, equal to its status.
    who = f'namespace="{namespace}",name="{name}"'
    deadline = time.monotonic() + 30  # status.observed may be rewritten between a scrape and the read
    while True:
        status = kubectl.json("infd", name)["status"]
        observed = prometheus_query(prometheus_url, f"hybridplace_observed_latency_milliseconds{{{who}}}")
        pool_cost = prometheus_query(prometheus_url, f"hybridplace_decision_pool_cost_usd_per_hour{{{who}}}")
        got = ([float(s["value"][1]) for s in observed], [float(s["value"][1]) for s in pool_cost])
        want = ([status["observed"]["latencyMs"]], [p["costPerHour"] for p in status["decision"]["placements"]])
        if got == want:
            break
        assert time.monotonic() < deadline, f"Prometheus {got} against the status {want}"
        time.sleep(2)
