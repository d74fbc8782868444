"""How close the closed-form latency model (placement/latency.py) is to a discrete-event
simulation of the same dynamic batcher (placement/simulate.py).

The grid: 4 service curves (the seed table's GPU and CPU, a small model with some spread, a
flat curve where batching is nearly free) x max batch 1/4/16/64 x queue delay 0/2/10 ms x
utilisation 0.1/0.3/0.5/0.7/0.85/0.9/0.95 of the full-batch throughput: 336 cases. For each, the
simulated and predicted p50/p95/p99 and the relative error; then the share of cases within
15% and 25%, and the worst. This checks the model's algebra, not the real server: the
validation against a real tritonserver (issue 5, phase 2) uses the same functions.

Run: make bench-latency-model   (or: python benchmarks/bench_latency_model.py [--requests N])
"""

from __future__ import annotations

import argparse
import statistics

from hybridplace.placement import ProfilePoint, ServiceCurve, predict_latency, simulate_latency

CURVES = {
    "gpu-seed": ServiceCurve.deterministic({1: 30.0, 10: 100.0, 100: 800.0}),
    "cpu-seed": ServiceCurve.deterministic({1: 50.0, 10: 400.0, 100: 3500.0}),
    "small": ServiceCurve.from_points([ProfilePoint(1, 1.0, 1.2, 1.5),
                                       ProfilePoint(8, 1.6, 1.9, 2.4),
                                       ProfilePoint(32, 3.5, 4.2, 5.3),
                                       ProfilePoint(128, 11.0, 13.0, 16.0)]),
    "flat": ServiceCurve.from_points([ProfilePoint(1, 5.0, 5.5, 6.0),
                                      ProfilePoint(16, 6.0, 6.6, 7.2),
                                      ProfilePoint(64, 10.0, 11.0, 12.0)]),
}
BATCHES = (1, 4, 16, 64)
DELAYS_MS = (0.0, 2.0, 10.0)
UTILISATIONS = (0.1, 0.3, 0.5, 0.7, 0.85, 0.9, 0.95)  # the default headroom 0.1 places up to 0.9
PERCENTILES = (50, 95, 99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="simulated per case")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args()

    errors: dict[int, list[float]] = {p: [] for p in PERCENTILES}
    if not args.quiet:
        print(f"{'curve':9s} {'B':>3s} {'D ms':>5s} {'util':>5s}   "
              + "  ".join(f"p{p} sim/model ms (err)" for p in PERCENTILES))
    for name, curve in CURVES.items():
        for batch in BATCHES:
            for delay in DELAYS_MS:
                for rho in UTILISATIONS:
                    load = rho * curve.throughput_rps(batch)
                    sim = simulate_latency(curve, load, batch, delay, requests=args.requests,
                                           seed=3)
                    row = []
                    for p in PERCENTILES:
                        model = predict_latency(curve, load, batch, delay, p).latency_ms
                        err = model / sim.percentiles_ms[p] - 1
                        errors[p].append(err)
                        row.append(f"{sim.percentiles_ms[p]:8.2f}/{model:8.2f} ({err:+4.0%})")
                    if not args.quiet:
                        print(f"{name:9s} {batch:3d} {delay:5.0f} {rho:5.2f}   " + "  ".join(row))
    print(f"\n{len(errors[95])} cases, {args.requests} simulated requests each")
    for p in PERCENTILES:
        e = [abs(x) for x in errors[p]]
        print(f"p{p}: within 15% {sum(x <= 0.15 for x in e) / len(e):5.1%}, within 25% "
              f"{sum(x <= 0.25 for x in e) / len(e):5.1%}, median |error| "
              f"{statistics.median(e):5.1%}, worst {max(errors[p], key=abs):+.1%}")


if __name__ == "__main__":
    main()
