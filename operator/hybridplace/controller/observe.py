"""What Prometheus saw of a serving deployment: request rate, latency at a percentile, queue time.

The serving pods' Triton metrics (docs/observability.md lists the series and these queries) are
scraped with the labels ``namespace``, ``inferencedeployment`` and ``pool`` (cluster/prometheus.yml
sets them from the pods' labels; the chart's PodMonitor does the same). Everything here reads
Prometheus through prometheus-api-client and turns its answers into an :class:`Observation`.

Missing data is *unknown*, never zero: a query that fails (connection refused, timeout, an HTTP
error, a malformed answer) or returns no series gives ``None`` for that figure, with the reason in
``Observation.error``; so does an answer without a serving pool's series (the sum of the other
pools would look like a lower load). Nothing here raises for Prometheus' sake.

Each query is one HTTP attempt (no library retries, no Retry-After waits: the next tick is the
retry), and a tick's queries together take at most ``budget_s``: one thread observes every
deployment, so a slow or hanging Prometheus must not hold it for longer than a scaling interval.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: The window the rate and queue queries average over (four 5 s scrapes): short enough to see a
#: step within an interval or two, long enough that one missed scrape is no outage.
DEFAULT_WINDOW = "20s"
#: The most one tick's queries take together, seconds: under the shortest scaling interval (5 s,
#: observed at most 0.5 s early). Past it the remaining queries are skipped and the tick's
#: observations are unknown.
TICK_BUDGET_S = 4.0
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9._-]{1,253}$")


@dataclass(frozen=True)
class Observation:
    """One InferenceDeployment's figures at ``at`` (Unix seconds); None means unknown.

    ``rate_rps``: requests/s over the window, all pods. ``latency_ms``: the server-side request
    latency at ``percentile`` (Triton's summary; the worst pod's). ``queue_ms``: mean queue time
    over the window. ``requests``: the total count of successful requests, all pods (a counter:
    it restarts with a pod). ``by_pool``: the same per pool.
    """

    at: float
    percentile: int
    rate_rps: float | None = None
    latency_ms: float | None = None
    queue_ms: float | None = None
    requests: float | None = None
    by_pool: dict[str, dict[str, float | None]] = field(default_factory=dict)
    error: str | None = None

    @property
    def known(self) -> bool:
        return self.rate_rps is not None


def selector(namespace: str, name: str) -> str:
    """The label matchers of one InferenceDeployment's series (values checked: no injection)."""
    for what, value in (("namespace", namespace), ("name", name)):
        if not _LABEL_VALUE.match(value):
            raise ValueError(f"{what} {value!r} is not a Kubernetes name")
    return f'namespace="{namespace}",inferencedeployment="{name}"'


def offered_rate(by: str, sel: str, window: str) -> str:
    """Requests/s arriving: served, failed, and the growth of the queue. The served rate alone
    stops growing at what the replicas can do, so an overloaded deployment would look only as
    busy as it can be; what is still waiting counts too."""
    seconds = window_seconds(window)
    # Summed separately: the failure counter carries a `reason` label the others lack.
    return (f"{by} (rate(nv_inference_request_success{{{sel}}}[{window}])) + "
            f"{by} (rate(nv_inference_request_failure{{{sel}}}[{window}])) + "
            f"{by} (clamp_min(delta(nv_inference_pending_request_count{{{sel}}}[{window}]), 0)) / {seconds:g}")


def window_seconds(window: str) -> float:
    """A PromQL duration ("20s", "1m", "2h") in seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    return float(window[:-1]) * units[window[-1]]


def queries(namespace: str, name: str, percentile: int = 95, window: str = DEFAULT_WINDOW) -> dict[str, str]:
    """The PromQL for each figure, by pool (docs/observability.md shows them)."""
    sel = selector(namespace, name)
    q = f"{percentile / 100:g}"
    by = "sum by (pool)"
    return {
        "rate": offered_rate(by, sel, window),
        "latency": f'max by (pool) (nv_inference_request_summary_us{{{sel},quantile="{q}"}}) / 1000',
        "queue": (
            f"{by} (rate(nv_inference_queue_duration_us{{{sel}}}[{window}])) / 1000 / "
            f"{by} (rate(nv_inference_request_success{{{sel}}}[{window}]))"
        ),
        "requests": f"{by} (nv_inference_request_success{{{sel}}})",
    }


def _by_pool(result: Any) -> dict[str, float]:
    """{pool: value} from an instant-vector answer; raises ValueError if it is not one."""
    if not isinstance(result, list):
        raise ValueError(f"expected a vector, got {type(result).__name__}")
    out = {}
    for item in result:
        value = float(item["value"][1])
        if math.isfinite(value):
            out[str(item.get("metric", {}).get("pool", ""))] = value
    return out


class BudgetSpent(TimeoutError):
    """A tick's queries took their whole budget: the rest are not sent."""


class PrometheusObserver:
    """Reads one InferenceDeployment's figures from Prometheus at ``url``.

    ``connect`` builds the client (prometheus-api-client's PrometheusConnect by default, with no
    retries); a test passes a fake, whose ``custom_query(promql, timeout=...)`` is called.
    ``timeout_s`` bounds each query's one attempt (connecting, and each wait for data), and
    ``budget_s`` the queries of one call of ``observe_all`` or ``observe`` together: each query
    gets at most what is left of it, and none is sent once it is spent. (requests' timeouts
    bound each wait, not a whole answer: a server that sends a byte every few seconds could
    still overrun them; Prometheus does not.)
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, budget_s: float = TICK_BUDGET_S, connect=None,
                 clock=time.time, monotonic=time.monotonic, ca_file: str = ""):
        self.url = url
        self.timeout_s = timeout_s
        self.budget_s = budget_s
        self.clock = clock
        self.monotonic = monotonic
        if connect is None:
            import requests
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            def connect(u):
                # The library's default retries 408/429/5xx three times with backoff and sleeps
                # for each Retry-After however long: no retries at all, and never a wait.
                no_retries = Retry(total=0, read=False, redirect=False, respect_retry_after_header=False)
                # An https Prometheus's certificate is checked (it was not: anyone on the path
                # could have fed the scaling loop its figures), against `ca_file` when given.
                session = requests.Session()
                session.verify = ca_file or True
                return PrometheusConnect(url=u, timeout=timeout_s, retry=no_retries, session=session)

        self._connect = connect
        self._client = None

    def _query(self, promql: str, timeout: float | None = None) -> Any:
        if self._client is None:
            self._client = self._connect(self.url)
        return self._client.custom_query(promql, timeout=self.timeout_s if timeout is None else timeout)

    def _budgeted(self):
        """``query(promql)`` for one tick: each query waits at most what is left of the budget."""
        deadline = self.monotonic() + self.budget_s

        def query(promql: str) -> Any:
            left = deadline - self.monotonic()
            spent = BudgetSpent(f"the tick's {self.budget_s:g} s for its queries were spent")
            if left <= 0:
                raise spent
            try:
                return self._query(promql, timeout=min(self.timeout_s, left))
            except Exception as err:
                if left < self.timeout_s and self.monotonic() >= deadline:  # cut short by the budget
                    raise spent from err
                raise

        return query

    def observe_all(self, window: str = DEFAULT_WINDOW) -> tuple[dict[tuple[str, str], dict[str, Any]], str | None]:
        """Every deployment's figures in four queries (see observe_fleet), within ``budget_s``."""
        return observe_fleet(self._budgeted(), window, self.clock())

    def observe(self, namespace: str, name: str, percentile: int = 95, window: str = DEFAULT_WINDOW) -> Observation:
        now = self.clock()
        try:
            qs = queries(namespace, name, percentile, window)
        except ValueError as err:
            return Observation(at=now, percentile=percentile, error=str(err))
        query = self._budgeted()
        figures: dict[str, dict[Any, float]] = {}
        for key, promql in qs.items():
            try:
                figures[key] = _by_pool(query(promql))
            except Exception as err:  # prometheus-api-client raises requests', urllib3's and its own
                return Observation(at=now, percentile=percentile, error=_failed(key, err))
        # The same shape as the fleet queries' answer, so one function makes every Observation.
        q = f"{percentile / 100:g}"
        figures["latency"] = {(pool, q): v for pool, v in figures["latency"].items()}
        return observation_from(figures, percentile, now)


def fleet_queries(window: str = DEFAULT_WINDOW) -> dict[str, str]:
    """One query per figure for every InferenceDeployment at once (the operator's loop): the
    cost of observing does not grow with the number of deployments."""
    by = "by (namespace, inferencedeployment, pool)"
    return {
        "rate": offered_rate(f"sum {by}", "", window),
        "latency": f"max {by.replace(')', ', quantile)')} (nv_inference_request_summary_us) / 1000",
        "queue": (f"sum {by} (rate(nv_inference_queue_duration_us[{window}])) / 1000 / "
                  f"sum {by} (rate(nv_inference_request_success[{window}]))"),
        "requests": f"sum {by} (nv_inference_request_success)",
    }


def observe_fleet(query, window: str, now: float) -> tuple[dict[tuple[str, str], dict[str, Any]], str | None]:
    """Every deployment's figures from the fleet queries: ({(namespace, name): {"rate": {pool: v},
    "latency": {(pool, quantile): v}, "queue": {pool: v}, "requests": {pool: v}}}, error).
    ``query(promql)`` runs one instant query. A failure gives ({}, why): unknown, never zero."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for key, promql in fleet_queries(window).items():
        try:
            result = query(promql)
            if not isinstance(result, list):
                raise ValueError(f"expected a vector, got {type(result).__name__}")
            for item in result:
                m = item.get("metric", {})
                value = float(item["value"][1])
                if not math.isfinite(value) or "namespace" not in m or "inferencedeployment" not in m:
                    continue
                figures = out.setdefault((m["namespace"], m["inferencedeployment"]),
                                         {"rate": {}, "latency": {}, "queue": {}, "requests": {}})
                pool = str(m.get("pool", ""))
                if key == "latency":
                    figures[key][(pool, str(m.get("quantile", "")))] = value
                else:
                    figures[key][pool] = value
        except Exception as err:  # prometheus-api-client raises requests', urllib3's and its own
            return {}, _failed(key, err)
    return out, None


def observation_from(
    figures: dict[str, Any] | None, percentile: int, at: float, error: str | None = None,
    serving: Iterable[str] = (),
) -> Observation:
    """One deployment's Observation from its fleet figures (None: no series for it).

    ``serving``: the pools whose pods serve its requests (``serving_pools``). One of them without
    a rate series (its pods not scraped, or not twice yet within the window) makes the load
    unknown: the sum of the others would look lower than it is. The pools present are kept in
    ``by_pool``. A figure over pools (the worst latency, the mean queue time) is unknown when a
    pool with requests lacks it."""
    if error is not None:
        return Observation(at=at, percentile=percentile, error=error)
    if not figures or not figures["rate"]:
        return Observation(at=at, percentile=percentile, error="Prometheus has no samples for this deployment")
    q = f"{percentile / 100:g}"
    latency = {pool: v for (pool, quantile), v in figures["latency"].items() if quantile == q}
    rate = figures["rate"]
    queue = figures["queue"]
    pools = sorted(set(rate) | set(figures["requests"]))
    by_pool = {p: {"rate": rate.get(p), "latency": latency.get(p), "queue": queue.get(p),
                   "requests": figures["requests"].get(p)} for p in pools}
    missing = sorted(set(serving) - set(rate))
    if missing:
        return Observation(at=at, percentile=percentile, by_pool=by_pool, error=(
            f"Prometheus has no samples for pool {', '.join(missing)}, which serves: the load is unknown"))
    total = sum(rate.values())
    busy = [p for p, v in rate.items() if v > 0]
    latency_ms = max(latency.values()) if latency and all(p in latency for p in busy) else None
    queue_ms = (sum(queue[p] * rate.get(p, 0.0) for p in queue) / total
                if queue and total > 0 and all(p in queue for p in busy) else None)
    return Observation(
        at=at, percentile=percentile, rate_rps=total, latency_ms=latency_ms,
        queue_ms=queue_ms, requests=sum(figures["requests"].values()) if figures["requests"] else None,
        by_pool=by_pool,
    )


def serving_pools(body: dict[str, Any]) -> set[str]:
    """The pools whose pods serve an InferenceDeployment's requests, from its status: those of
    status.serving with available replicas (Outgoing ones included: they serve until the new
    ones are Ready); without status.serving, the decision's placements with replicas. A pool
    whose pods are all still starting serves nothing, so its absence from Prometheus hides no
    load (and waiting for it would leave the deployment unobserved for as long as it starts)."""
    status = body.get("status") or {}
    serving = status.get("serving")
    if isinstance(serving, list):
        return {str(x["pool"]) for x in serving
                if isinstance(x, dict) and x.get("pool") and _positive(x.get("availableReplicas"))}
    placements = (status.get("decision") or {}).get("placements") or []
    return {str(p["pool"]) for p in placements
            if isinstance(p, dict) and p.get("pool") and _positive(p.get("replicas"))}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _failed(key: str, err: BaseException) -> str:
    if isinstance(err, BudgetSpent):
        return f"{key} query skipped: {err}"
    return f"{key} query failed: {_reason(err)}"


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
