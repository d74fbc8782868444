"""What Prometheus saw of a serving deployment: request rate, latency at a percentile, queue time.

The serving pods' Triton metrics (docs/observability.md lists the series and these queries) are
scraped with the labels ``namespace``, ``inferencedeployment`` and ``pool`` (cluster/prometheus.yml
sets them from the pods' labels; the chart's PodMonitor does the same). Everything here reads
Prometheus through prometheus-api-client and turns its answers into an :class:`Observation`.

Missing data is *unknown*, never zero: a query that fails (connection refused, timeout, an HTTP
error, a malformed answer) or returns no series gives ``None`` for that figure, with the reason in
``Observation.error``. Nothing here raises for Prometheus' sake.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

#: The window the rate and queue queries average over (six 5 s scrapes).
DEFAULT_WINDOW = "30s"
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


def queries(namespace: str, name: str, percentile: int = 95, window: str = DEFAULT_WINDOW) -> dict[str, str]:
    """The PromQL for each figure, by pool (docs/observability.md shows them)."""
    sel = selector(namespace, name)
    q = f"{percentile / 100:g}"
    by = "sum by (pool)"
    return {
        "rate": f"{by} (rate(nv_inference_request_success{{{sel}}}[{window}]))",
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


class PrometheusObserver:
    """Reads one InferenceDeployment's figures from Prometheus at ``url``.

    ``connect`` builds the client (prometheus-api-client's PrometheusConnect by default); a test
    passes a fake. ``timeout_s`` bounds each query.
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0, connect=None, clock=time.time):
        self.url = url
        self.timeout_s = timeout_s
        self.clock = clock
        if connect is None:
            from prometheus_api_client import PrometheusConnect

            def connect(u):
                return PrometheusConnect(url=u, disable_ssl=True, timeout=timeout_s)

        self._connect = connect
        self._client = None

    def _query(self, promql: str) -> Any:
        if self._client is None:
            self._client = self._connect(self.url)
        return self._client.custom_query(promql)

    def observe(self, namespace: str, name: str, percentile: int = 95, window: str = DEFAULT_WINDOW) -> Observation:
        now = self.clock()
        try:
            qs = queries(namespace, name, percentile, window)
        except ValueError as err:
            return Observation(at=now, percentile=percentile, error=str(err))
        figures: dict[str, dict[str, float]] = {}
        for key, promql in qs.items():
            try:
                figures[key] = _by_pool(self._query(promql))
            except Exception as err:  # prometheus-api-client raises requests', urllib3's and its own
                return Observation(at=now, percentile=percentile, error=f"{key} query failed: {_reason(err)}")
        if not figures["rate"]:
            return Observation(
                at=now, percentile=percentile, error="Prometheus has no samples for this deployment yet"
            )
        pools = sorted(set(figures["rate"]) | set(figures["requests"]))
        by_pool = {p: {k: figures[k].get(p) for k in ("rate", "latency", "queue", "requests")} for p in pools}
        latencies = [v for v in figures["latency"].values()]
        queues = [(figures["queue"][p], figures["rate"].get(p, 0.0)) for p in figures["queue"]]
        total_rate = sum(figures["rate"].values())
        queue_ms = None
        if queues and total_rate > 0:
            queue_ms = sum(q * r for q, r in queues) / total_rate
        return Observation(
            at=now,
            percentile=percentile,
            rate_rps=total_rate,
            latency_ms=max(latencies) if latencies else None,
            queue_ms=queue_ms,
            requests=sum(figures["requests"].values()) if figures["requests"] else None,
            by_pool=by_pool,
        )


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text[:300]}" if text else type(err).__name__
