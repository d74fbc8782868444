"""The operator's own Prometheus metrics, served on `/metrics` (prometheus_client).

Two kinds, both in one registry per operator (never prometheus_client's global one, so that tests
and several operators in one process do not mix):

- **Counters and histograms of what the operator does**, updated as it happens: reconciles by
  kind, their duration and errors; the work queue's wait; API calls by verb, resource and
  result; benchmark Jobs' durations; the observation loop's ticks, their failures and duration.
- **Gauges of what the operator knows**, computed at scrape time from its in-memory state
  (`StateCollector`): the work queue's depth, Events dropped, benchmark Jobs by state, profile
  ages, and per InferenceDeployment its decision (cost per hour and per million inferences,
  watts, predicted latency and replicas per pool, the SLO) and what was observed. They are read
  from the very status the operator wrote, so a gauge never disagrees with `kubectl get`, and
  nothing is kept per deployment between scrapes.

Label cardinality is bounded (docs/observability.md, "The operator's own metrics"): `kind`,
`verb`, `resource`, `result`, `state` take a few fixed values; `pool` is bounded by the
HardwarePools; `namespace`/`name` by the InferenceDeployments (a handful of series each).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("hybridplace")

PREFIX = "hybridplace"
# The queue keys' first element, and what a reconcile is of.
RECONCILE_KINDS = ("infd", "job", "pool", "profile")
# API resources the operator calls (kube.PATHS); anything else is counted as "other".
RESOURCES = frozenset({
    "jobs", "deployments", "services", "pods", "events", "modelprofiles", "inferencedeployments",
    "hardwarepools", "leases", "nodes", "inferencedeployments/status", "hardwarepools/status",
    "modelprofiles/status", "httproutes", "gateways",  # a split's route and the Gateway it names
})
VERBS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
JOB_STATES = ("running", "finished", "succeeded", "failed")
# Reconciles take milliseconds to a few seconds; the queue's wait up to the max backoff.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300)
BENCHMARK_BUCKETS = (5, 10, 30, 60, 120, 300, 600, 1200, 3600)
# An observation tick's queries: milliseconds, up to the tick's budget (observe.TICK_BUDGET_S).
OBSERVE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5)


class Metrics:
    """The operator's counters and histograms, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.reconciles = Counter(f"{PREFIX}_reconcile", "Reconciles finished, by what was reconciled "
                                  "(infd, job, pool, profile)", ["kind"], registry=r)
        self.reconcile_errors = Counter(f"{PREFIX}_reconcile_errors", "Reconciles that raised (and will be "
                                        "retried with backoff), by kind", ["kind"], registry=r)
        self.reconcile_seconds = Histogram(f"{PREFIX}_reconcile_duration_seconds", "Time one reconcile took, "
                                           "seconds, by kind", ["kind"], buckets=DURATION_BUCKETS, registry=r)
        self.queue_wait = Histogram(f"{PREFIX}_workqueue_wait_seconds", "Time a key waited in the work queue "
                                    "from due to taken by a worker, seconds", buckets=WAIT_BUCKETS, registry=r)
        self.api_calls = Counter(f"{PREFIX}_api_requests", "Calls to the Kubernetes API server, by verb, "
                                 "resource and result (the HTTP code, or 'error' when no answer came)",
                                 ["verb", "resource", "result"], registry=r)
        self.benchmark_seconds = Histogram(f"{PREFIX}_benchmark_duration_seconds", "Benchmark Jobs from start "
                                           "to finish, seconds, by result (succeeded or failed)", ["result"],
                                           buckets=BENCHMARK_BUCKETS, registry=r)
        self.observe_ticks = Counter(f"{PREFIX}_observe_ticks", "Ticks of the observation loop that queried "
                                     "Prometheus (some deployment's interval had come)", registry=r)
        self.observe_errors = Counter(f"{PREFIX}_observe_errors", "Observation ticks that failed: a query "
                                      "failed or was skipped (every deployment observed as unknown), or the "
                                      "tick raised", registry=r)
        self.observe_seconds = Histogram(f"{PREFIX}_observe_duration_seconds", "Time one observation tick's "
                                         "queries took, seconds", buckets=OBSERVE_BUCKETS, registry=r)
        for kind in RECONCILE_KINDS:  # present from the start: rate() needs a first sample
            self.reconciles.labels(kind)
            self.reconcile_errors.labels(kind)

    def reconciled(self, kind: str, seconds: float, failed: bool) -> None:
        kind = kind if kind in RECONCILE_KINDS else "other"
        self.reconciles.labels(kind).inc()
        self.reconcile_seconds.labels(kind).observe(seconds)
        if failed:
            self.reconcile_errors.labels(kind).inc()

    def observed(self, seconds: float, failed: bool) -> None:
        """One observation tick that queried Prometheus."""
        self.observe_ticks.inc()
        self.observe_seconds.observe(seconds)
        if failed:
            self.observe_errors.inc()

    def api_call(self, verb: str, resource: str, status: int) -> None:
        """One API call; `status` 0 when no answer came."""
        self.api_calls.labels(verb if verb in VERBS else "other",
                              resource if resource in RESOURCES else "other",
                              str(status) if 100 <= status <= 599 else "error").inc()

    def benchmark_finished(self, succeeded: bool, seconds: float | None) -> None:
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            self.benchmark_seconds.labels("succeeded" if succeeded else "failed").observe(seconds)


@dataclass
class Snapshot:
    """What the state collector reads at scrape time (the operator fills it from its parts)."""

    queue_depth: int = 0
    events_dropped: int = 0
    events_posted: int = 0
    leading: bool = True
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (pool, state) -> Jobs
    profile_ages: dict[str, tuple[float, float, int]] = field(default_factory=dict)  # pool -> oldest, newest s, count
    infds: list[dict[str, Any]] = field(default_factory=list)  # bodies, status included


# name, help, the status path it is read from (docs/observability.md lists them).
DEPLOYMENT_GAUGES = {
    "decision_cost_usd_per_hour": "USD per hour of the decision (status.decision.totalCostPerHour)",
    "decision_cost_usd_per_million": "USD per million inferences at the load decided for "
                                     "(status.decision.costPerMillion)",
    "decision_watts": "Watts of the decision, when every pool used declares power (status.decision.totalWatts)",
    "decision_watt_hours_per_million": "Watt-hours per million inferences (status.decision.wattHoursPerMillion)",
    "decision_feasible": "1 when some placement meets the SLO, 0 when none does (status.decision.feasible)",
    "decision_load_rps": "The load the decision is solved for, requests/s (status.scaling.loadRps, "
                         "else spec.load.targetRps)",
    "slo_latency_milliseconds": "The SLO's latency threshold, ms (spec.slo.latencyMs; label percentile)",
    "observed_requests_per_second": "Offered requests/s Prometheus last showed (status.observed.requestsPerSecond)",
    "observed_latency_milliseconds": "Server-side latency at the SLO's percentile Prometheus last showed, ms "
                                     "(status.observed.latencyMs)",
    "observed_queue_milliseconds": "Mean queue time Prometheus last showed, ms (status.observed.queueMs)",
    "calibration_ratio": "Observed over predicted latency (status.calibration), per pool",
}
POOL_GAUGES = {
    "decision_replicas": "Serving replicas the decision puts on the pool (status.decision.placements[].replicas)",
    "decision_pool_cost_usd_per_hour": "USD per hour of the pool's replicas (placements[].costPerHour)",
    "decision_predicted_latency_milliseconds": "Predicted latency at the SLO's percentile on the pool, ms "
                                               "(placements[].predictedLatencyMs)",
    "decision_batch_size": "Triton's max batch size on the pool (placements[].batchSize)",
    "decision_share_rps": "Requests/s routed to the pool (placements[].shareRps)",
}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def deployment_samples(body: dict[str, Any]) -> Iterator[tuple[str, dict[str, str], float]]:
    """(gauge name without prefix, labels, value) for one InferenceDeployment, from its status
    as stored; nothing for a figure the status does not have (unknown is absent, never 0)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    who = {"namespace": str(meta.get("namespace") or ""), "name": str(meta.get("name") or "")}
    decision = status.get("decision") or {}
    placements = decision.get("placements") or []
    for gauge, value in (("decision_cost_usd_per_hour", decision.get("totalCostPerHour")),
                         ("decision_cost_usd_per_million", decision.get("costPerMillion")),
                         ("decision_watts", decision.get("totalWatts")),
                         ("decision_watt_hours_per_million", decision.get("wattHoursPerMillion")),
                         ("decision_feasible", decision.get("feasible"))):
        if decision and (number := _number(value)) is not None and (placements or gauge == "decision_feasible"):
            yield gauge, who, number
    load = _number((status.get("scaling") or {}).get("loadRps"))
    if load is None:
        load = _number((spec.get("load") or {}).get("targetRps"))
    if decision and load is not None:
        yield "decision_load_rps", who, load
    slo = spec.get("slo") or {}
    if (threshold := _number(slo.get("latencyMs"))) is not None:
        yield "slo_latency_milliseconds", {**who, "percentile": str(slo.get("percentile", 95))}, threshold
    for p in placements:
        labels = {**who, "pool": str(p.get("pool") or "")}
        for gauge, key in (("decision_replicas", "replicas"), ("decision_pool_cost_usd_per_hour", "costPerHour"),
                           ("decision_predicted_latency_milliseconds", "predictedLatencyMs"),
                           ("decision_batch_size", "batchSize"), ("decision_share_rps", "shareRps")):
            if (number := _number(p.get(key))) is not None:
                yield gauge, labels, number
    observed = status.get("observed") or {}
    for gauge, key in (("observed_requests_per_second", "requestsPerSecond"),
                       ("observed_latency_milliseconds", "latencyMs"), ("observed_queue_milliseconds", "queueMs")):
        if (number := _number(observed.get(key))) is not None:
            yield gauge, who, number
    calibration = status.get("calibration")
    for entry in calibration if isinstance(calibration, list) else []:  # once the calibration issue lands
        if isinstance(entry, dict) and (number := _number(entry.get("ratio"))) is not None:
            yield "calibration_ratio", {**who, "pool": str(entry.get("pool") or "")}, number


class StateCollector(Collector):
    """Gauges computed at scrape time from `snapshot()` (None: the operator is starting)."""

    def __init__(self, snapshot: Callable[[], Snapshot | None]):
        self._snapshot = snapshot

    def collect(self) -> Iterable[Any]:
        try:
            snap = self._snapshot()
        except Exception:  # noqa: BLE001 - a scrape must answer; the failure is logged
            log.exception("reading the operator's state for /metrics failed")
            snap = None
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 while the operator's parts are running (0 while starting)")
        up.add_metric([], 0.0 if snap is None else 1.0)
        yield up
        if snap is None:
            return
        leader = GaugeMetricFamily(f"{PREFIX}_leader", "1 when this replica reconciles (holds the Lease, or "
                                   "runs without leader election)")
        leader.add_metric([], 1.0 if snap.leading else 0.0)
        yield leader
        depth = GaugeMetricFamily(f"{PREFIX}_workqueue_depth", "Keys due or waiting in the work queue")
        depth.add_metric([], float(snap.queue_depth))
        yield depth
        dropped = CounterMetricFamily(f"{PREFIX}_events_dropped", "Events not posted: the queue was full or "
                                      "the API server kept failing")
        dropped.add_metric([], float(snap.events_dropped))
        yield dropped
        posted = CounterMetricFamily(f"{PREFIX}_events_posted", "Events posted")
        posted.add_metric([], float(snap.events_posted))
        yield posted
        jobs = GaugeMetricFamily(f"{PREFIX}_benchmark_jobs", "Benchmark Jobs the operator knows, by pool and "
                                 "state (running, finished: not read yet, succeeded, failed)", labels=["pool", "state"])
        for (pool, state), count in sorted(snap.jobs.items()):
            jobs.add_metric([pool, state], float(count))
        yield jobs
        oldest = GaugeMetricFamily(f"{PREFIX}_profile_age_seconds_max", "Age of the oldest ModelProfile used "
                                   "or usable on the pool (since spec.measuredAt), seconds", labels=["pool"])
        newest = GaugeMetricFamily(f"{PREFIX}_profile_age_seconds_min", "Age of the newest ModelProfile on the "
                                   "pool, seconds", labels=["pool"])
        count = GaugeMetricFamily(f"{PREFIX}_profiles", "ModelProfiles on the pool", labels=["pool"])
        for pool, (old, new, n) in sorted(snap.profile_ages.items()):
            oldest.add_metric([pool], old)
            newest.add_metric([pool], new)
            count.add_metric([pool], float(n))
        yield from (oldest, newest, count)
        families: dict[str, tuple[GaugeMetricFamily, list[str]]] = {}
        for name, text in {**DEPLOYMENT_GAUGES, **POOL_GAUGES}.items():
            labels = ["namespace", "name"] + (["pool"] if name in POOL_GAUGES or name == "calibration_ratio" else [])
            if name == "slo_latency_milliseconds":
                labels.append("percentile")
            families[name] = (GaugeMetricFamily(f"{PREFIX}_{name}", text, labels=labels), labels)
        for body in snap.infds:
            for name, labels, value in deployment_samples(body):
                family, names = families[name]
                family.add_metric([labels[k] for k in names], value)
        yield from (family for family, _ in families.values())


def serve(port: int, registry: CollectorRegistry, address: str = "0.0.0.0") -> Any:
    """Serve `registry` on http://address:port/metrics from a daemon thread; returns the server
    (`.shutdown()` stops it). Raises OSError when the port cannot be had."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server


__all__ = ["Metrics", "Snapshot", "StateCollector", "deployment_samples", "serve", "DEPLOYMENT_GAUGES",
           "POOL_GAUGES"]
