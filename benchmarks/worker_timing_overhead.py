"""The timing loop's own cost per measured call (goal: under 50 microseconds on CPU).

It runs hybridplace_worker.timing.measure_point on a call that does nothing, so everything
measured is the loop: two clock reads, the bookkeeping, the window checks. Printed per call:

  loop cost      = window time / calls, minus the cost of a bare ``for`` loop calling the same no-op
  recorded floor = the p50 latency the timer records for the no-op (what it adds to every sample)

for concurrency 1 (the calling thread) and 2 (worker threads). Usage:
  python benchmarks/worker_timing_overhead.py [--window-seconds 0.2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import time

from hybridplace_worker.timing import StabilityRule, WindowPlan, measure_point, simple_worker


def noop() -> None:
    return None


def bare_loop_ns_per_call(n: int = 2_000_000) -> float:
    call = noop
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-seconds", type=float, default=0.2)
    args = parser.parse_args()
    plan = WindowPlan(window_s=args.window_seconds, warmup_s=0.05, rule=StabilityRule(0.5, 3, 3))
    print(
        f"# timing-loop overhead, {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
        f"Python {platform.python_version()}"
    )
    bare = bare_loop_ns_per_call()
    print(f"bare python loop calling a no-op: {bare / 1000:.3f} us per call")
    worst = 0.0
    for concurrency in (1, 2):
        m = measure_point(simple_worker(noop), concurrency=concurrency, plan=plan)
        per_call_us = 1e6 / m.throughput_rps * concurrency  # wall time per call, per worker
        loop_us = per_call_us - bare / 1000
        worst = max(worst, loop_us, m.p50_ms * 1000)
        print(
            f"concurrency {concurrency}: {m.samples} calls; loop cost {loop_us:.3f} us per call; "
            f"recorded floor p50 {m.p50_ms * 1000:.3f} us, p99 {m.p99_ms * 1000:.3f} us"
        )
    verdict = "meets" if worst < 50 else "MISSES"
    print(f"worst per-call overhead {worst:.3f} us: {verdict} the 50 us goal")
    return 0 if worst < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
