"""A discrete-event simulation of one replica's dynamic batcher: the reference that the
closed-form model in ``latency.py`` is checked against (tests and benchmarks), and a tool for
the validation against a real tritonserver (run both at the same load and compare).

Too slow for the solver (tens of milliseconds per load), so never called by ``solve``.

What it simulates, request by request, with a seeded generator (deterministic):
- Poisson arrivals at the instance's share of the load (load / concurrency).
- Triton's dynamic batcher with one model instance: when the instance is free and requests
  are queued, send min(queued, B) at once if B are queued or the oldest has waited
  ``max_queue_delay_ms``; otherwise wait until either happens.
- Service time of a batch of k items: drawn from a piecewise-linear quantile function through
  the curve's p50/p95/p99 at k (a lower tail mirrored from p95, an upper tail extended past p99).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .latency import ServiceCurve, _interpolate


@dataclass(frozen=True)
class SimulatedLatency:
    """Percentile and mean latencies (ms) measured in the simulation, and the mean batch
    size."""

    percentiles_ms: dict[int, float]
    mean_ms: float
    mean_batch_size: float
    requests: int


def simulate_latency(curve: ServiceCurve, load_rps: float, max_batch_size: int,
                     max_queue_delay_ms: float, requests: int = 20000, seed: int = 0,
                     percentiles: tuple[int, ...] = (50, 90, 95, 99)) -> SimulatedLatency:
    """Simulate ``requests`` requests to one instance of a replica at ``load_rps`` (requests/s,
    split evenly over ``curve.concurrency`` instances); the first tenth is discarded as
    warm-up. Raises ValueError when the load is unstable (utilisation >= 1)."""
    if load_rps <= 0:
        raise ValueError(f"load_rps must be > 0, got {load_rps}")
    if max_batch_size > curve.batch_sizes[-1]:
        raise ValueError(f"max_batch_size {max_batch_size} is above the largest measured "
                         f"batch size {curve.batch_sizes[-1]}")
    if load_rps >= curve.throughput_rps(max_batch_size):
        raise ValueError(f"load {load_rps} requests/s is at or above the replica's throughput "
                         f"{curve.throughput_rps(max_batch_size):.4g} requests/s")
    rng = random.Random(seed)
    mean_gap_ms = 1000.0 * curve.concurrency / load_rps
    arrivals = []
    t = 0.0
    for _ in range(requests):
        t += rng.expovariate(1.0 / mean_gap_ms)
        arrivals.append(t)

    latency = [0.0] * requests
    big_b = max_batch_size
    delay = max_queue_delay_ms
    head = 0  # oldest queued request; queued = arrivals[head:seen]
    seen = 0
    free_at = 0.0
    batches = 0
    while head < requests:
        if head == seen:
            seen += 1
        now = max(free_at, arrivals[head])
        while seen < requests and arrivals[seen] <= now:
            seen += 1
        if seen - head < big_b and arrivals[head] + delay > now:
            # Hold the batch: until the oldest has waited the delay, or B are queued.
            fill = head + big_b - 1
            now = min(arrivals[head] + delay, arrivals[fill] if fill < requests else math.inf)
            while seen < requests and arrivals[seen] <= now:
                seen += 1
        k = min(seen - head, big_b)
        done = now + _sample_service_ms(curve, k, rng.random())
        for i in range(head, head + k):
            latency[i] = done - arrivals[i]
        head += k
        free_at = done
        batches += 1

    kept = sorted(latency[requests // 10:])
    n = len(kept)
    return SimulatedLatency(
        percentiles_ms={p: kept[min(n - 1, int(p / 100.0 * n))] for p in percentiles},
        mean_ms=sum(kept) / n,
        mean_batch_size=requests / batches,
        requests=requests,
    )


def _sample_service_ms(curve: ServiceCurve, k: int, u: float) -> float:
    p50 = _interpolate(curve.batch_sizes, curve.p50_ms, k)
    p95 = _interpolate(curve.batch_sizes, curve.p95_ms, k)
    p99 = _interpolate(curve.batch_sizes, curve.p99_ms, k)
    # The mean the model uses may exceed p50 (throughput-derived); shift so the means agree.
    shift = _interpolate(curve.batch_sizes, curve.mean_ms, k) - p50
    low = max(0.0, p50 - (p95 - p50))
    high = p99 + (p99 - p95)
    return shift + _interpolate_unit(u, (0.0, 0.5, 0.95, 0.99, 1.0), (low, p50, p95, p99, high))


def _interpolate_unit(u: float, us: tuple[float, ...], qs: tuple[float, ...]) -> float:
    for j in range(1, len(us)):
        if u <= us[j]:
            return qs[j - 1] + (qs[j] - qs[j - 1]) * (u - us[j - 1]) / (us[j] - us[j - 1])
    return qs[-1]
