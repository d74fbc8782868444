"""Our triton engine against NVIDIA perf_analyzer, on the same tritonserver, in one run.

One local tritonserver serves one model (the repository from hybridplace_worker's generator).
For every (batch size, concurrency) point, both tools measure it back to back, in ABBA order
over many short rounds (ours, theirs; theirs, ours; ...) so slow drift of a shared machine hits
both alike, with the same window length and stability threshold. The server runs on all CPUs
but the last, both clients on the last (``--no-pin`` to share them), and idle CPUs poll instead
of halting for the run (``--no-idle-poll`` to let them halt; see ``idle_polling``). Printed: p50 latency and
throughput of each (medians over the rounds) and the ratios ours/theirs, each the median over
rounds of that round's paired ratio (the two runs of a round were back to back), with a
distribution-free 95% confidence interval of that median (order statistics of the paired
ratios: no assumption about their distribution). ``--runs N`` repeats the whole comparison N
times, each with a server of its own, and prints each point's run-to-run spread. The goal is
agreement within 5% at every point of every run; more than 10% anywhere is a failure (exit
code 1).

Under each point a line says where each tool's mean latency goes: the server's queue and compute
per request (Triton's statistics endpoint, read around each of our runs; perf_analyzer reports
the same figures for its windows) and the rest (HTTP, network, the client). The server's share
agrees between the two; the difference of the rests is what the two clients do differently.

perf_analyzer comes from benchmarks/fetch-perf-analyzer.sh (``make perf-analyzer``). Usage:
  python benchmarks/worker_vs_perf_analyzer.py --perf-analyzer-dir DIR \
      [--model builtin:resnet] [--batch-sizes 1,4] [--concurrency 1,2] [--protocol http]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

from hybridplace_worker.engine_triton import MODEL_NAME, build_repository, client_worker, model_stats
from hybridplace_worker.models import check_model_inputs, load_model
from hybridplace_worker.timing import StabilityRule, WindowPlan, measure_point
from hybridplace_worker.triton_repo import ServingConfig
from hybridplace_worker.triton_server import locate_tritonserver, loopback_server


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def run_perf_analyzer(
    pa_dir: Path,
    url: str,
    protocol: str,
    batch: int,
    concurrency: int,
    window_ms: int,
    threshold_pct: int,
    max_trials: int,
    workdir: Path,
) -> dict:
    """One perf_analyzer run at one point; p50 latency (ms) and inferences/s from its CSV."""
    csv_path = workdir / f"pa-b{batch}-c{concurrency}-{time.monotonic_ns()}.csv"
    env = dict(os.environ)
    lib = str(pa_dir / "lib")
    env["LD_LIBRARY_PATH"] = f"{lib}:{env['LD_LIBRARY_PATH']}" if env.get("LD_LIBRARY_PATH") else lib
    cmd = [
        str(pa_dir / "perf_analyzer"),
        "-m",
        MODEL_NAME,
        "-u",
        url,
        "-i",
        protocol,
        "-b",
        str(batch),
        "--concurrency-range",
        f"{concurrency}:{concurrency}",
        "--measurement-interval",
        str(window_ms),
        "--stability-percentage",
        str(threshold_pct),
        "--max-trials",
        str(max_trials),
        "--percentile",
        "50",
        "--input-data",
        "random",
        "-f",
        str(csv_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if "Failed to obtain stable measurement" in proc.stdout + proc.stderr and window_ms < 8000:
        # perf_analyzer reports nothing for an unstable point; like its message says, retry longer.
        print(
            f"  (perf_analyzer unstable at b={batch} c={concurrency} with {window_ms} ms windows; "
            f"retrying with {window_ms * 2} ms)",
            flush=True,
        )
        return run_perf_analyzer(
            pa_dir,
            url,
            protocol,
            batch,
            concurrency,
            window_ms * 2,
            threshold_pct,
            max_trials,
            workdir,
        )
    if proc.returncode != 0 or not csv_path.exists():
        raise RuntimeError(f"perf_analyzer failed ({proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    with open(csv_path) as f:
        row = next(csv.DictReader(f))
    return {
        "p50Ms": float(row["p50 latency"]) / 1000.0,
        "ips": float(row["Inferences/Second"]),
        "p99Ms": float(row["p99 latency"]) / 1000.0,
        "stable": True,
        "windowMs": window_ms,
        **perf_analyzer_breakdown(row),
    }


#: Triton's per-request stages, as its statistics endpoint names them and perf_analyzer's CSV.
SERVER_STAGES = {
    "queue": "Server Queue",
    "compute_input": "Server Compute Input",
    "compute_infer": "Server Compute Infer",
    "compute_output": "Server Compute Output",
}
#: perf_analyzer's CSV: the stages that add up to its mean latency (microseconds each).
PA_MEAN_COLUMNS = ["Client Send", "Network+Server Send/Recv", *SERVER_STAGES.values(), "Client Recv"]


def perf_analyzer_breakdown(row: dict) -> dict:
    """From one perf_analyzer CSV row: its mean latency (the sum of its stages), the server's
    share (queue and compute, from Triton's statistics over its windows) and the rest (HTTP,
    network, client), all in ms."""
    mean_ms = sum(float(row[c]) for c in PA_MEAN_COLUMNS) / 1000.0
    server_ms = sum(float(row[c]) for c in SERVER_STAGES.values()) / 1000.0
    return {"meanMs": mean_ms, "serverMs": server_ms, "restMs": mean_ms - server_ms}


def server_ms_per_request(before: dict, after: dict) -> float:
    """Mean queue + compute time per request (ms) between two snapshots of Triton's model
    statistics (``model_stats``); ValueError when no request succeeded in between."""
    b, a = before["inference_stats"], after["inference_stats"]
    requests = int(a["success"]["count"]) - int(b["success"]["count"])
    if requests <= 0:
        raise ValueError("no request succeeded between the two statistics snapshots")
    ns = sum(int(a[k]["ns"]) - int(b[k]["ns"]) for k in SERVER_STAGES)
    return ns / requests / 1e6


def median_ci(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``values``: the order statistics
    (k, n+1-k) with the largest k whose binomial(n, 1/2) coverage is at least ``confidence``.
    With fewer than 6 values no such k exists at 95%: the whole range is returned."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("no values")
    best = 1
    for k in range(1, n // 2 + 1):
        # P(x_(k) <= median < x_(n+1-k)) = 1 - 2 * P(Binomial(n, 1/2) <= k - 1)
        tail = sum(math.comb(n, i) for i in range(k)) / 2**n
        if 1 - 2 * tail >= confidence:
            best = k
        else:
            break
    return xs[best - 1], xs[n - best]


def run_ours(
    model, outputs, url: str, protocol: str, batch: int, concurrency: int, plan: WindowPlan, http_port: int
) -> dict:
    factory = client_worker(protocol, url, model, outputs, batch)
    before = model_stats(http_port)
    m = measure_point(factory, concurrency=concurrency, plan=plan)
    # Triton's statistics cover the whole run (warm-up too), our mean the counted windows: the
    # server's share is a per-request mean either way.
    server_ms = server_ms_per_request(before, model_stats(http_port))
    return {
        "p50Ms": m.p50_ms,
        "ips": m.throughput_rps * batch,
        "p99Ms": m.p99_ms,
        "stable": m.stable,
        "meanMs": m.mean_ms,
        "serverMs": server_ms,
        "restMs": m.mean_ms - server_ms,
    }


CPU_DMA_LATENCY = Path("/dev/cpu_dma_latency")


@contextmanager
def idle_polling(path: Path = CPU_DMA_LATENCY):
    """Keep idle CPUs polling for the run: ask the kernel's PM QoS for an exit latency of 0 us.

    On a virtual machine without guest halt-polling (this KVM guest: the haltpoll cpuidle driver
    with ``haltpoll.guest_halt_poll_ns=0``) an idle CPU halts, the halt is a VM exit, and a client
    woken by its response pays the host's wake-up (tens of us) on every wait. perf_analyzer waits
    more times per request than our one ``recv`` (five ``poll`` calls), so it paid more of it,
    4-5% of a 1.1 ms round trip. With a request of 0 us the kernel picks the POLL idle state,
    whose exit costs nothing, and both clients and the server time only their own work. It is
    what latency benchmarks do (cyclictest, tuned's latency-performance); the request holds only
    while the file is open, so it ends with the run. Yields a one-line description: how idle CPUs
    behave, or why they were left alone (no such file, not root).
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        yield f"idle CPUs left alone ({path}: {exc.strerror or exc})"
        return
    try:
        os.write(fd, struct.pack("i", 0))
        yield f"idle CPUs polling ({path} held at 0 us)"
    finally:
        os.close(fd)


def compare_once(args, model, outputs, serving, plan, install, threads) -> list[dict]:
    """One whole comparison on a server of its own: a row per (batch size, concurrency)."""
    mine = os.sched_getaffinity(0)
    try:
        return _compare(args, model, outputs, serving, plan, install, threads)
    finally:
        os.sched_setaffinity(0, mine)  # the next run pins afresh


def _compare(args, model, outputs, serving, plan, install, threads) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="hp-bench-") as tmp:
        workdir = Path(tmp)
        repo = build_repository(model, workdir / "repository", serving, outputs=outputs)
        server, ports = loopback_server(install, repo, workdir)
        cpus = sorted(os.sched_getaffinity(0))
        pinned = args.pin and len(cpus) >= 2
        if pinned:
            # Server and clients on separate CPUs: on a small machine, whichever client burns more
            # CPU would otherwise slow the very server it measures (perf_analyzer's threads and
            # ours differ there). tritonserver and its python stubs inherit the first set.
            os.sched_setaffinity(0, cpus[:-1])
        server.start()
        if pinned:
            os.sched_setaffinity(0, cpus[-1:])  # our client threads and perf_analyzer
        try:
            ready = server.wait_ready(180, models=[MODEL_NAME])
            url = f"127.0.0.1:{ports.http if args.protocol == 'http' else ports.grpc}"
            print(
                f"# tritonserver pid {server.pid} ready in {ready:.1f} s; model {args.model} "
                f"({model.digest[:19]}...) on {args.device}, {args.protocol}, window {args.window_seconds} s, "
                f"threshold {args.threshold:.0%}, {threads} torch threads in the server, "
                f"dynamic batching {'on' if args.dynamic_batching else 'off'}, "
                f"{f'server on CPUs {cpus[:-1]}, clients on CPU {cpus[-1]}' if pinned else 'not pinned'}",
                flush=True,
            )
            for b in args.batch_sizes:
                for c in args.concurrency:
                    ours, theirs = [], []
                    for r in range(args.rounds):
                        order = ("ours", "pa") if r % 2 == 0 else ("pa", "ours")
                        for who in order:
                            if who == "ours":
                                ours.append(run_ours(model, outputs, url, args.protocol, b, c, plan, ports.http))
                            else:
                                theirs.append(
                                    run_perf_analyzer(
                                        args.perf_analyzer_dir,
                                        url,
                                        args.protocol,
                                        b,
                                        c,
                                        round(args.window_seconds * 1000),
                                        round(args.threshold * 100),
                                        args.max_windows,
                                        workdir,
                                    )
                                )
                    row = {
                        "b": b,
                        "c": c,
                        "oursP50Ms": statistics.median(x["p50Ms"] for x in ours),
                        "paP50Ms": statistics.median(x["p50Ms"] for x in theirs),
                        "oursIps": statistics.median(x["ips"] for x in ours),
                        "paIps": statistics.median(x["ips"] for x in theirs),
                        "oursStable": all(x["stable"] for x in ours),
                        "paStable": all(x["stable"] for x in theirs),
                        "runs": {"ours": ours, "perfAnalyzer": theirs},
                    }
                    # Paired ratios: round r's two runs were back to back, so their ratio
                    # cancels the machine's slow drift; the median over rounds is the verdict.
                    pairs = list(zip(ours, theirs, strict=True))
                    p50_ratios = [a["p50Ms"] / b["p50Ms"] for a, b in pairs]
                    ips_ratios = [a["ips"] / b["ips"] for a, b in pairs]
                    row["p50Ratio"] = statistics.median(p50_ratios)
                    row["ipsRatio"] = statistics.median(ips_ratios)
                    row["p50RatioCi95"] = median_ci(p50_ratios)
                    row["ipsRatioCi95"] = median_ci(ips_ratios)
                    row["p50RatioOfMedians"] = row["oursP50Ms"] / row["paP50Ms"]
                    row["ipsRatioOfMedians"] = row["oursIps"] / row["paIps"]
                    for key in ("meanMs", "serverMs", "restMs"):
                        row[f"ours{key[0].upper()}{key[1:]}"] = statistics.median(x[key] for x in ours)
                        row[f"pa{key[0].upper()}{key[1:]}"] = statistics.median(x[key] for x in theirs)
                    rows.append(row)
                    print(
                        f"b={b:<3} c={c:<2} p50 ours {row['oursP50Ms']:8.3f} ms  perf_analyzer "
                        f"{row['paP50Ms']:8.3f} ms  ratio {row['p50Ratio']:.3f} "
                        f"[{row['p50RatioCi95'][0]:.3f}, {row['p50RatioCi95'][1]:.3f}] | inf/s ours "
                        f"{row['oursIps']:9.1f}  perf_analyzer {row['paIps']:9.1f}  ratio "
                        f"{row['ipsRatio']:.3f} [{row['ipsRatioCi95'][0]:.3f}, {row['ipsRatioCi95'][1]:.3f}]  stable "
                        f"{int(row['oursStable'])}/{int(row['paStable'])}",
                        flush=True,
                    )
                    print(breakdown_line(row), flush=True)
        finally:
            server.stop()
    return rows


def breakdown_line(row: dict) -> str:
    """Where each tool's mean latency goes (medians over rounds): the server's queue and compute
    (Triton's statistics) and the rest (HTTP, network, the client), and the difference of the
    rests: what the two clients do differently, in microseconds. Each figure is its own median
    over the rounds, so mean = server + rest holds only roughly; at concurrency 2 our server share
    also counts the warm-up's requests (Triton's statistics span the whole run)."""
    return (
        f"      means: ours {row['oursMeanMs']:.3f} ms = server {row['oursServerMs']:.3f} + rest "
        f"{row['oursRestMs']:.3f} | perf_analyzer {row['paMeanMs']:.3f} ms = server "
        f"{row['paServerMs']:.3f} + rest {row['paRestMs']:.3f} | rest, perf_analyzer - ours: "
        f"{(row['paRestMs'] - row['oursRestMs']) * 1000:+.0f} us, server: "
        f"{(row['paServerMs'] - row['oursServerMs']) * 1000:+.0f} us"
    )


def print_spread(runs: list[list[dict]]) -> None:
    """Per point: each run's p50 and inf/s ratios, and their spread across runs."""
    print("# run-to-run: per point, each run's ratio (ours / perf_analyzer) and the spread (max - min)")
    for i, first in enumerate(runs[0]):
        p50 = [one[i]["p50Ratio"] for one in runs]
        ips = [one[i]["ipsRatio"] for one in runs]
        print(
            f"b={first['b']:<3} c={first['c']:<2} p50 ratios {', '.join(f'{x:.3f}' for x in p50)} "
            f"(spread {max(p50) - min(p50):.3f}) | inf/s ratios {', '.join(f'{x:.3f}' for x in ips)} "
            f"(spread {max(ips) - min(ips):.3f})",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--perf-analyzer-dir", required=True, type=Path)
    p.add_argument("--model", default="builtin:resnet")
    p.add_argument("--batch-sizes", type=ints, default=[1, 4])
    p.add_argument("--concurrency", type=ints, default=[1, 2])
    p.add_argument("--protocol", choices=["http", "grpc"], default="http")
    p.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="where Triton runs the model: cuda is a KIND_GPU instance (benchmarks/gpu_check.sh)",
    )
    p.add_argument("--window-seconds", type=float, default=1.0)
    p.add_argument(
        "--threshold",
        type=float,
        default=0.5,
        help="stability threshold of both tools: loose, because this compares the two tools' "
        "measurements of the same server, interleaved, rather than judging its stability",
    )
    p.add_argument("--max-windows", type=int, default=10)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads in the server (0: all CPUs); 1 leaves a core to the client on 2 cores",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=20,
        help="alternating rounds per point (ABBA...); 20: the median of the paired "
        "ratios within about 1.5%% (one sd) where one round's ratio moves by 5%% "
        "with the host's drift",
    )
    p.add_argument("--runs", type=int, default=1, help="whole comparisons, each with a server of its own")
    p.add_argument(
        "--dynamic-batching",
        action="store_true",
        help="let Triton merge concurrent requests; off by default, because how often it merges "
        "depends on each client's own speed, which is not what this compares",
    )
    p.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not put the server on all CPUs but the last and both clients on the last",
    )
    p.add_argument(
        "--no-idle-poll",
        dest="idle_poll",
        action="store_false",
        help="let idle CPUs halt (by default the run holds /dev/cpu_dma_latency at 0 us where it "
        "may write it, root on Linux: see idle_polling)",
    )
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args()
    with idle_polling() if args.idle_poll else nullcontext("idle CPUs left alone (--no-idle-poll)") as idle:
        print(f"# {idle}", flush=True)
        return _main(args, idle)


def _main(args, idle: str) -> int:
    load_before = os.getloadavg()[0]
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = load_model(args.model, digest=None, format="torchscript", inputs=[])
    outputs = check_model_inputs(model)
    threads = args.threads or len(os.sched_getaffinity(0))
    serving = ServingConfig(
        max_batch_size=max(args.batch_sizes),
        threads=threads,
        dynamic_batching=args.dynamic_batching,
        instance_kind="gpu" if args.device == "cuda" else "cpu",
    )
    plan = WindowPlan(
        window_s=args.window_seconds,
        warmup_s=1.0,
        rule=StabilityRule(args.threshold, 3, args.max_windows),
    )
    install = locate_tritonserver()
    runs = []
    for run in range(args.runs):
        if args.runs > 1:
            print(f"# run {run + 1} of {args.runs}", flush=True)
        runs.append(compare_once(args, model, outputs, serving, plan, install, threads))
    rows = [row for one in runs for row in one]
    if args.runs > 1:
        print_spread(runs)
    worst = max(max(abs(r["p50Ratio"] - 1), abs(r["ipsRatio"] - 1)) for r in rows)
    verdict = "within 5% (goal)" if worst <= 0.05 else "within 10%" if worst <= 0.10 else "OUTSIDE 10%"
    load_after = os.getloadavg()[0]
    print(
        f"# worst deviation over {args.runs} run(s), every point: {worst:.1%}: {verdict}. "
        f"{started}, {platform.node()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"load average {load_before:.2f} before / {load_after:.2f} after; {idle}"
    )
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "startedAt": started,
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "rows": rows,
                    "runs": args.runs,
                    "idle": idle,
                    "worstDeviation": worst,
                },
                indent=2,
            )
        )
    return 0 if worst <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
