"""How steady this host's serving capacity is: a real tritonserver pinned to one CPU, saturated
with single-item requests (closed loop, as the worker's per-request overhead measurement does),
window after window. Prints each window's requests/s, the batch Triton ran, the server's CPU
share and CPU per request, then the spread of the capacity over the run.

Why it matters: the latency-model validation (``make bench-latency-validation``) aims its rates
at fractions of a capacity measured once. Near saturation a queue's latency is very sensitive
to the capacity: at utilisation 0.8, a host 10% slower for some seconds runs the replica at
0.89 and its p95 doubles. A run of this script before the validation says what the host
allows: with a spread of s, rates above about 1 - s of the capacity are not reproducible.

The connection counts alternate (``--connections``, default 2B and 32B), interleaved, so that
a drift over time is told apart from an effect of the number of connections.

Run: make bench-capacity-drift   (or: python benchmarks/capacity_drift.py [--windows N] ...)
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import validate_latency_model as V  # noqa: E402  (the validation's server and statistics)
from hybridplace_worker.engine_triton import (  # noqa: E402
    check_model_inputs,
    http_infer_message,
    synthetic_inputs,
)


def saturate(port: int, message: bytes, connections: int, seconds: float, pid: int) -> dict:
    """One closed-loop window: ``connections`` threads, each one request at a time."""
    stats0, cpu0 = V.model_stats(port, V.SERVED), V.group_cpu_seconds(pid)
    requests, elapsed = V.closed_loop(port, message, connections, seconds)
    stats1, cpu1 = V.model_stats(port, V.SERVED), V.group_cpu_seconds(pid)
    runs = stats1["executions"] - stats0["executions"]
    return {
        "connections": connections,
        "rps": requests / elapsed,
        "meanBatch": (stats1["inferences"] - stats0["inferences"]) / runs if runs else 0.0,
        "serverCpuShare": (cpu1 - cpu0) / elapsed,
        "cpuMsPerRequest": 1000 * (cpu1 - cpu0) / requests if requests else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mlp", choices=sorted(V.BUILTINS),
                   help="the builtin model served")
    p.add_argument("--max-batch-size", type=int, default=8, help="B of the served model")
    p.add_argument("--queue-delay-ms", type=float, default=2.0, help="D of the served model")
    p.add_argument("--windows", type=int, default=12, help="saturated windows, back to back")
    p.add_argument("--window-s", type=float, default=4.0, help="seconds per window")
    p.add_argument("--connections", type=V._ints, default=None,
                   help="connection counts, alternated window by window (default: 2B,32B)")
    cpus = sorted(os.sched_getaffinity(0))
    p.add_argument("--pin-server", type=V._cpu, default=cpus[0] if len(cpus) >= 2 else None,
                   metavar="CPU", help="run tritonserver and its stubs on this CPU only "
                   "(default: the first, where there are two or more; 'none': anywhere)")
    p.add_argument("--pin-client", type=V._cpu, default=cpus[1] if len(cpus) >= 2 else None,
                   metavar="CPU", help="run the client threads on this CPU only (default: the "
                   "second; 'none': anywhere)")
    args = p.parse_args(argv)
    if args.windows < 1 or args.window_s <= 0 or args.max_batch_size < 1:
        p.error("--windows and --max-batch-size must be at least 1, --window-s above 0")
    connections = args.connections or [2 * args.max_batch_size, 32 * args.max_batch_size]
    if any(c < 1 for c in connections):
        p.error(f"--connections: each count must be at least 1, got {connections}")

    print(f"# capacity_drift: builtin:{args.model} B={args.max_batch_size} "
          f"D={args.queue_delay_ms} ms on tritonserver, server on CPU {args.pin_server}, "
          f"client on CPU {args.pin_client}; {args.windows} windows of {args.window_s:g} s; "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.pin_client is not None:
        os.sched_setaffinity(0, {args.pin_client})
    server_cpus = {args.pin_server} if args.pin_server is not None else None
    windows = []
    with tempfile.TemporaryDirectory(prefix="hp-drift-") as tmp:
        workdir = Path(tmp)
        model = V.benchmark_model(args.model, workdir)
        outputs = check_model_inputs(model)
        with V.tritonserver(workdir, model, outputs, args.max_batch_size, args.queue_delay_ms,
                            1, server_cpus) as (port, pid):
            arrays = [t.numpy() for t in synthetic_inputs(model.inputs, 1)]
            one = http_infer_message(model, outputs, arrays, V.SERVED, "127.0.0.1")
            saturate(port, one, connections[0], min(1.0, args.window_s), pid)  # warm-up
            began = time.monotonic()
            for i in range(args.windows):
                w = saturate(port, one, connections[i % len(connections)], args.window_s, pid)
                w["atS"] = time.monotonic() - began
                windows.append(w)
                print(f"t={w['atS']:6.1f} s  connections {w['connections']:4d}  "
                      f"{w['rps']:9.1f} requests/s  batch {w['meanBatch']:.2f}  server cpu "
                      f"{w['serverCpuShare']:.2f}  cpu/request {w['cpuMsPerRequest']:.4f} ms",
                      flush=True)
    rates = [w["rps"] for w in windows]
    low, mid, high = min(rates), statistics.median(rates), max(rates)
    print(f"capacity: median {mid:.1f} requests/s, {low:.1f} to {high:.1f} "
          f"({100 * (low / mid - 1):+.1f}% to {100 * (high / mid - 1):+.1f}% of the median)")
    for c in connections:
        mine = [w["rps"] for w in windows if w["connections"] == c]
        print(f"  {c:4d} connections: median {statistics.median(mine):.1f} requests/s over "
              f"{len(mine)} window(s)")
    print(f"spread (max/min - 1): {100 * (high / low - 1):.1f}%; load average "
          f"{os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
