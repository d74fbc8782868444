"""The seed table as a worked example: where CPU is cheaper, where GPU is, and the crossover.

Reads examples/hardwarepools.yaml and examples/seed/ (the DESIGN.md seed table as two
ModelProfiles: CPU 50 / 400 / 3500 ms and GPU 30 / 100 / 800 ms at batch 1 / 10 / 100, and the
`seed` InferenceDeployment), and asks the engine -- through the same adapter as the operator
and `hybridplace recommend` -- for three placements at each load from 1 to 5,000 requests/s:
the CPU pool alone, the GPU pool alone, and the choice over both (hybrid allowed, as in the
example). The crossover is the lowest load at which the choice stops being CPU only, found by
bisection to 0.001 requests/s.

The example caps replicas (the CPU pool at 16, the GPU pool at 8, the deployment at 16), which
5,000 requests/s would exceed; the sweep lifts those caps (``--keep-capacity`` keeps them) so
that each pool's cost can be read at every load. Prices, SLO, headroom and queue delay are the
files' (``--slo-ms`` overrides the SLO).

    make seed-crossover                 # the table
    make plot                           # also docs/seed-crossover.png
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

from hybridplace.api import HardwarePool, InferenceDeployment, ModelProfile, load_objects
from hybridplace.placement import Decision, Pool, Profile, Request, solve
from hybridplace.placement.from_api import pool_from, profile_from, request_from

REPO = Path(__file__).resolve().parent.parent
FILES = [REPO / "examples" / "hardwarepools.yaml", REPO / "examples" / "seed"]
TABLE_LOADS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


@dataclasses.dataclass(frozen=True)
class Example:
    request: Request
    pools: tuple[Pool, ...]
    profiles: tuple[Profile, ...]
    cpu: str
    gpu: str

    def decide(self, load: float, only: str | None = None) -> Decision:
        request = dataclasses.replace(self.request, target_rps=load)
        if only is not None:
            request = dataclasses.replace(request, pools=(only,))
        return solve(request, self.pools, self.profiles)


def load_example(slo_ms: float | None = None, keep_capacity: bool = False) -> Example:
    objects = [item.obj for item in load_objects(FILES)]
    infd = next(o for o in objects if isinstance(o, InferenceDeployment))
    pools = [pool_from(o) for o in objects if isinstance(o, HardwarePool)]
    profiles = [profile_from(o) for o in objects if isinstance(o, ModelProfile)]
    request = request_from(infd)
    if slo_ms is not None:
        request = dataclasses.replace(request, slo_latency_ms=slo_ms)
    if not keep_capacity:
        request = dataclasses.replace(request, max_replicas=None)
        pools = [dataclasses.replace(p, capacity_replicas=None) for p in pools]
    cpu = next(p.name for p in pools if p.accelerator == "cpu")
    gpu = next(p.name for p in pools if p.accelerator == "nvidia-gpu")
    return Example(request, tuple(pools), tuple(profiles), cpu, gpu)


def cost(decision: Decision) -> float:
    return decision.total_cost_per_hour if decision.feasible else math.inf


def describe(decision: Decision) -> str:
    if not decision.feasible:
        return "infeasible"
    return " + ".join(f"{p.replicas} x {p.pool} (batch {p.batch_size})"
                      for p in decision.placements)


def cpu_only(example: Example, decision: Decision) -> bool:
    return decision.feasible and {p.pool for p in decision.placements} == {example.cpu}


def crossover(example: Example, low: float, high: float, tolerance: float = 1e-3) -> float:
    """The lowest load in (low, high] at which the choice is no longer CPU only, given that it
    is CPU only at ``low`` and not at ``high`` (bisection; the least load found not CPU only)."""
    while high - low > tolerance:
        middle = (low + high) / 2
        if cpu_only(example, example.decide(middle)):
            low = middle
        else:
            high = middle
    return high


def log_grid(start: float, stop: float, points: int) -> list[float]:
    step = math.log(stop / start) / (points - 1)
    return [start * math.exp(i * step) for i in range(points)]


def sweep(example: Example, loads: list[float]) -> list[dict]:
    rows = []
    for load in loads:
        chosen, cpu, gpu = (example.decide(load), example.decide(load, example.cpu),
                            example.decide(load, example.gpu))
        rows.append({"load": load, "cpu": cost(cpu), "gpu": cost(gpu), "chosen": cost(chosen),
                     "cpuText": describe(cpu), "gpuText": describe(gpu),
                     "chosenText": describe(chosen), "cpuOnly": cpu_only(example, chosen)})
    return rows


def find_crossover(example: Example, rows: list[dict]) -> float | None:
    for before, after in zip(rows, rows[1:], strict=False):
        if before["cpuOnly"] and not after["cpuOnly"]:
            return crossover(example, before["load"], after["load"])
    return None


def usd(value: float) -> str:
    return "-" if math.isinf(value) else f"{value:.4f}"


def markdown(example: Example, rows: list[dict], cross: float | None) -> str:
    r = example.request
    lines = [
        f"SLO p{r.slo_percentile} <= {r.slo_latency_ms:g} ms, headroom {r.headroom:g}, queue "
        f"delay {r.max_queue_delay_ms:g} ms, batch sizes {list(r.batch_sizes)}, hybrid "
        f"{'allowed' if r.allow_hybrid else 'not allowed'}; "
        + ", ".join(f"{p.name} {_price(p)}" for p in example.pools),
        "",
        f"| load (rps) | {example.cpu} alone | USD/h | {example.gpu} alone | USD/h | chosen | USD/h |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        is_cross = cross is not None and row["load"] == cross
        load = f"**{row['load']:.2f} (crossover)**" if is_cross else f"{row['load']:g}"
        lines.append(f"| {load} | {row['cpuText']} | {usd(row['cpu'])} | "
                     f"{row['gpuText']} | {usd(row['gpu'])} | {row['chosenText']} | "
                     f"{usd(row['chosen'])} |")
    return "\n".join(lines)


def _price(pool: Pool) -> str:
    if pool.price_per_node_hour is not None:
        return f"{pool.price_per_node_hour:g} USD/node-hour ({pool.replicas_per_node} per node)"
    return f"{pool.price_per_replica_hour:g} USD/replica-hour"


def plot(example: Example, cross: float | None, path: Path, points: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loads = log_grid(1, 5000, points)
    if cross is not None:
        loads = sorted(set(loads) | {cross})
    rows = sweep(example, loads)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for key, label, style in (("cpu", f"{example.cpu} alone", dict(color="tab:blue")),
                              ("gpu", f"{example.gpu} alone", dict(color="tab:green")),
                              ("chosen", "chosen (hybrid allowed)",
                               dict(color="black", linestyle="--", linewidth=1.2))):
        ax.plot([r["load"] for r in rows], [r[key] for r in rows], label=label,
                drawstyle="steps-post", **style)
    if cross is not None:
        ax.axvline(cross, color="tab:red", linewidth=0.8)
        ax.annotate(f"crossover {cross:.1f} requests/s", (cross, 0.25), xytext=(6, 0),
                    textcoords="offset points", color="tab:red", fontsize=9)
    r = example.request
    ax.set(xscale="log", yscale="log", xlabel="load (requests/s)", ylabel="cost (USD per hour)",
           title=f"Seed table: cost of meeting p{r.slo_percentile} <= {r.slo_latency_ms:g} ms "
                 f"(headroom {r.headroom:g})")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slo-ms", type=float, default=None,
                        help="SLO latency in ms (default: the example's)")
    parser.add_argument("--keep-capacity", action="store_true",
                        help="keep the example's replica caps (high loads become infeasible)")
    parser.add_argument("--points", type=int, default=0,
                        help="also show this many log-spaced loads from 1 to 5000 in the table "
                        "(default: only the 1-2-5 loads and the crossover)")
    parser.add_argument("--search-points", type=int, default=400,
                        help="log-spaced loads scanned for the crossover before bisection")
    parser.add_argument("--plot", type=Path, default=None, help="write the figure (PNG) here")
    parser.add_argument("--plot-points", type=int, default=600)
    args = parser.parse_args(argv)
    example = load_example(args.slo_ms, args.keep_capacity)
    extra = log_grid(1, 5000, args.points) if args.points > 1 else []
    loads = sorted(set(TABLE_LOADS) | {round(x, 1) for x in extra})
    # The crossover is searched on a fine grid (a coarse one could step over a narrow switch),
    # then bisected; every scanned load above it is checked for a switch back to CPU only.
    scanned = sweep(example, sorted(set(log_grid(1, 5000, args.search_points)) | set(loads)))
    cross = find_crossover(example, scanned)
    rows = [r for r in scanned if r["load"] in set(loads)]
    if cross is not None:
        rows = sorted(rows + sweep(example, [cross]), key=lambda r: r["load"])
    print(markdown(example, rows, cross))
    print()
    if cross is None:
        print("no crossover between 1 and 5000 requests/s")
    else:
        below = example.decide(cross - 1e-3)
        above = example.decide(cross)
        print(f"crossover: {cross:.2f} requests/s -- below it {describe(below)} at "
              f"{cost(below):.4f} USD/h, from it {describe(above)} at {cost(above):.4f} USD/h")
        later = [r["load"] for r in scanned if r["load"] > cross and r["cpuOnly"]]
        print(f"above it, the choice is CPU only at {len(later)} of "
              f"{sum(r['load'] > cross for r in scanned)} scanned loads"
              + (": " + ", ".join(f"{x:.4g}" for x in later[:10]) if later else ""))
        cheaper = [r["load"] for r in scanned if r["load"] > cross and r["cpu"] < r["gpu"]]
        if cheaper:
            print(f"(the pools alone still cross back and forth: CPU alone is cheaper than GPU "
                  f"alone at {len(cheaper)} scanned loads above it, the highest "
                  f"{max(cheaper):.4g} requests/s, where whole GPU nodes are poorly used; the "
                  f"choice then adds CPU replicas to the GPU nodes)")
    if args.plot:
        plot(example, cross, args.plot, args.plot_points)
        print(f"wrote {args.plot} ({args.plot.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
