"""The latency model against a real tritonserver: measured p95 under open-loop Poisson load vs
``predict_latency`` on the service curve measured from the same server.

What it does (issue 5, item 2):

1. Writes one Triton repository with two copies of a builtin model (the worker's
   ``build_repository``, the same function ``hybridplace-worker serve`` and ``bench --engine
   triton`` use) and starts the pytriton wheel's tritonserver on 127.0.0.1:
   - ``curve``: dynamic batching with no queue delay, to measure the service curve as
     ``hybridplace-worker bench --engine triton`` does (closed loop, concurrency 1, one request
     of b items at a time, the worker's own timing loop ``measure_point``);
   - ``served``: max batch size B and queue delay D, the configuration under test.
   Both have one instance with ``--threads`` torch threads. The server runs on one CPU and the
   generator on another (``--pin-server``, ``--pin-generator``): a replica with one CPU, and a
   client that never takes its CPU.
   The served model is then saturated for 3 s with single-item requests (2B connections, closed
   loop): the time per request beyond the curve's time per item is the HTTP and backend work
   that one request of b items pays once and b requests pay b times; it is added to the curve
   per item (``--no-request-overhead``: left out).
2. Per arrival rate (fractions of the served model's full-batch capacity ``B / s(B)``): the
   curve is measured just before and just after, and the prediction uses the two pooled (a
   profile taken around the same time, as the operator's would be).
3. An open-loop Poisson generator (seeded exponential gaps; a pool of connections, each
   keep-alive and sending one request at a time, pre-encoded by tritonclient as the worker's
   triton engine does) sends every request at its scheduled time whether or not earlier ones
   have been answered. ``--generator go`` (default): ``benchmarks/loadgen``, a small Go program
   built here with the local Go toolchain (standard library only) into ``$HP_CACHE/bin``;
   ``--generator python``: threads in this process, which fell behind above about 4,000
   requests/s on one CPU (lateness p95 up to 220 ms) where the Go one keeps its schedule.
   A request's latency: from just before its send to its response read.
   The generator's lateness (send - schedule) and its CPU time are reported, so a generator
   starved of CPU shows up instead of hiding in the figures.
4. Triton's own statistics (``/v2/models/served/stats``) give the mean batch size it ran,
   compared with the model's.

Bounded: each rate sends at most ``--max-requests`` over at most ``--seconds``; tritonserver is
stopped by PID (its process group) at the end, also on errors and Ctrl-C.

    make bench-latency-validation                   # defaults below: 4-5 minutes on a quiet
                                                    # host, up to 5 minutes more per rate
                                                    # waiting for one
    make bench-latency-validation BENCH_ARGS="--utilisations 0.3,0.6 --seconds 10"
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hybridplace.placement import ProfilePoint, ServiceCurve, predict_latency, simulate_latency
from hybridplace.placement.calibration import CalibrationPolicy, CalibrationSample, calibrate
from hybridplace_worker.catalog import BUILTIN_VERSIONS
from hybridplace_worker.device import cpu_model_name
from hybridplace_worker.engine_triton import (
    KeepAliveConnection,
    build_repository,
    http_infer_message,
    request_overhead_ms,
)
from hybridplace_worker.engine_triton import model_stats as triton_model_stats
from hybridplace_worker.models import check_model_inputs, load_model, synthetic_inputs
from hybridplace_worker.spec import InputSpec
from hybridplace_worker.timing import StabilityRule, WindowPlan, measure_point, percentile
from hybridplace_worker.triton_repo import ServingConfig
from hybridplace_worker.triton_server import locate_tritonserver, loopback_server

CURVE, SERVED = "curve", "served"


# --- the service curve ----------------------------------------------------------------------


@dataclass
class CurvePoint:
    batch_size: int
    latencies_ns: list[int]
    seconds: float
    server_ms: float = 0.0  # Triton's mean compute per execution (input + infer + output)
    executions: int = 0

    def profile_point(self) -> ProfilePoint:
        lat = sorted(self.latencies_ns)
        return ProfilePoint(
            batch_size=self.batch_size,
            p50_ms=percentile(lat, 50) / 1e6, p95_ms=percentile(lat, 95) / 1e6,
            p99_ms=percentile(lat, 99) / 1e6,
            throughput_rps=len(lat) / self.seconds)


def measure_curve(http_port: int, messages: dict[int, bytes], window_s: float
                  ) -> list[CurvePoint]:
    """Closed loop, concurrency 1, per batch size: the worker's timing loop (warm-up, three
    windows; no stability retries, since the point here is a profile taken now), and Triton's
    own compute time per execution."""
    plan = WindowPlan(window_s=window_s, warmup_s=0.3,
                      rule=StabilityRule(stable_windows=3, max_windows=3, threshold=0.999))
    points = []
    for batch, message in sorted(messages.items()):
        @contextlib.contextmanager
        def factory(_index, message=message):
            conn = KeepAliveConnection("127.0.0.1", http_port, timeout=60)
            try:
                yield lambda: conn.roundtrip(message)
            finally:
                conn.close()

        stats0 = model_stats(http_port, CURVE)
        m = measure_point(factory, concurrency=1, plan=plan)
        count, server_ms = batch_compute_ms(stats0, model_stats(http_port, CURVE)).get(
            batch, (0, 0.0))
        last = m.windows[-3:]
        points.append(CurvePoint(batch, [x for w in last for x in w.latencies_ns],
                                 sum(w.duration_s for w in last), server_ms, count))
    return points


def lag1_autocorrelation(values: list[int]) -> float:
    """Correlation of each closed-loop latency with the next (0 for independent service times,
    which the model assumes; a host whose other jobs come and go makes slow calls cluster)."""
    n = len(values)
    if n < 3:
        return float("nan")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values)
    if var == 0:
        return 0.0
    return sum((values[i] - mean) * (values[i + 1] - mean) for i in range(n - 1)) / var


def pooled(*measurements: list[CurvePoint]) -> list[CurvePoint]:
    by_batch: dict[int, CurvePoint] = {}
    for points in measurements:
        for p in points:
            seen = by_batch.setdefault(p.batch_size, CurvePoint(p.batch_size, [], 0.0))
            seen.latencies_ns.extend(p.latencies_ns)
            seen.seconds += p.seconds
            total = seen.server_ms * seen.executions + p.server_ms * p.executions
            seen.executions += p.executions
            seen.server_ms = total / seen.executions if seen.executions else 0.0
    return [by_batch[b] for b in sorted(by_batch)]


def pooled_curve(*measurements: list[CurvePoint], overhead_ms: float = 0.0) -> ServiceCurve:
    """The curve of the pooled points, with ``overhead_ms`` per single-item request added as the
    operator adds a profile's ``requestOverheadMs``."""
    return ServiceCurve.from_points([p.profile_point() for p in pooled(*measurements)],
                                    request_overhead_ms=overhead_ms)


def in_situ_curve(curve: ServiceCurve, points: list[CurvePoint],
                  under_load: dict[int, tuple[int, float]]) -> tuple[ServiceCurve, float]:
    """The profile with its server part rescaled to what Triton measured during the load run.

    ``r`` = Triton's compute per execution under load / in the closed loop, weighted over the
    batch sizes it ran (the closed loop's interpolated). Each batch size's mean becomes
    ``mean + (r - 1) * server``; its percentiles and spread scale with the mean. This keeps the
    latency model's queueing and batching and corrects only the level of the service time: it
    tells the model's error apart from a profile that no longer holds under load."""
    xs = [p.batch_size for p in points]
    server = [p.server_ms for p in points]

    def closed_server(k: float) -> float:
        if k <= xs[0]:
            return server[0]
        for i in range(1, len(xs)):
            if k <= xs[i]:
                f = (k - xs[i - 1]) / (xs[i] - xs[i - 1])
                return server[i - 1] + (server[i] - server[i - 1]) * f
        return server[-1]

    loaded = sum(n * ms for n, ms in under_load.values())
    closed = sum(n * closed_server(k) for k, (n, _) in under_load.items())
    r = loaded / closed if closed else 1.0
    factors = [(m + (r - 1) * closed_server(b)) / m for b, m in
               zip(curve.batch_sizes, curve.mean_ms, strict=True)]

    def scaled(values):
        return tuple(v * f for v, f in zip(values, factors, strict=True))

    return ServiceCurve(curve.batch_sizes, scaled(curve.mean_ms), scaled(curve.sd_ms),
                        scaled(curve.p50_ms), scaled(curve.p95_ms), scaled(curve.p99_ms),
                        curve.concurrency), r


def closed_loop(port: int, message: bytes, connections: int, seconds: float,
                timeout: float = 30.0) -> tuple[int, float]:
    """``connections`` threads, each sending ``message`` one at a time on its own keep-alive
    connection for ``seconds``: (requests answered, seconds elapsed). A failed connection (refused,
    no answer within ``timeout`` s, an HTTP error) fails the call, with how many did, instead of
    quietly lowering the count."""
    stop = time.perf_counter() + seconds
    counts: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        n = 0
        try:
            conn = KeepAliveConnection("127.0.0.1", port, timeout=timeout)
            try:
                while time.perf_counter() < stop:
                    conn.roundtrip(message)
                    n += 1
            finally:
                conn.close()
        except Exception as exc:  # re-raised below, in the caller's thread
            errors.append(exc)
        finally:
            counts.append(n)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker, name="hp-saturate", daemon=True)
            for _ in range(connections)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} of {connections} connections failed: {errors[0]!r}")
    return sum(counts), elapsed


def measure_request_overhead(port: int, message: bytes, max_batch: int, seconds: float,
                             curve: ServiceCurve) -> tuple[float, float, float]:
    """Saturate the served model with single-item requests (closed loop, 2B connections) and
    read the time per request beyond the curve's per item at the batch Triton ran, with the
    worker's own formula: (overhead ms per request, requests/s, mean batch Triton ran). The
    worker's ``measure_request_overhead`` does the same on its model; this one drives ``served``."""
    stats0 = model_stats(port, SERVED)
    requests, elapsed = closed_loop(port, message, 2 * max_batch, seconds)
    stats1 = model_stats(port, SERVED)
    rps = requests / elapsed
    runs = stats1["executions"] - stats0["executions"]
    batch = (stats1["inferences"] - stats0["inferences"]) / runs if runs else float(max_batch)
    points = [(b, curve.mean_at(b)) for b in curve.batch_sizes]
    return request_overhead_ms(points, rps, batch), rps, batch


# --- the open-loop generator ----------------------------------------------------------------


@dataclass
class LoadRun:
    rate_rps: float
    scheduled_ns: list[int] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)
    done_ns: list[int] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    generator_cpu_s: float = 0.0
    timed_out: bool = False


def poisson_load(port: int, message: bytes, rate_rps: float, requests: int, seed: int,
                 threads: int, limit_s: float) -> LoadRun:
    """Send ``requests`` requests at Poisson times (``rate_rps``), open loop: each is sent at
    its time by whichever of ``threads`` connections is free, never waiting for earlier answers
    (unless all ``threads`` are in flight: then it is late, and the lateness is recorded)."""
    rng = random.Random(seed)
    gaps, t = [], 0.0
    for _ in range(requests):
        t += rng.expovariate(rate_rps)
        gaps.append(t)
    run = LoadRun(rate_rps)
    n = len(gaps)
    scheduled = [0] * n
    sent = [0] * n
    done = [0] * n
    ok = [False] * n
    lock = threading.Lock()
    next_index = [0]
    stop_at = time.perf_counter_ns() + int(limit_s * 1e9)
    start_ns = time.perf_counter_ns() + 200_000_000  # 0.2 s for every thread to connect
    usage0 = resource.getrusage(resource.RUSAGE_SELF)

    def worker():
        conn = KeepAliveConnection("127.0.0.1", port, timeout=max(limit_s, 10))
        try:
            while True:
                with lock:
                    i = next_index[0]
                    next_index[0] += 1
                if i >= n:
                    return
                at = start_ns + int(gaps[i] * 1e9)
                if at > stop_at:
                    return
                wait = at - time.perf_counter_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
                scheduled[i] = at
                sent[i] = time.perf_counter_ns()
                try:
                    conn.roundtrip(message)
                    ok[i] = True
                except (OSError, RuntimeError):
                    conn.close()
                done[i] = time.perf_counter_ns()
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=max(0.0, (stop_at - time.perf_counter_ns()) / 1e9) + 30)
        run.timed_out |= thread.is_alive()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    run.seconds = (max(done) - start_ns) / 1e9 if any(done) else 0.0
    run.generator_cpu_s = ((usage1.ru_utime - usage0.ru_utime)
                           + (usage1.ru_stime - usage0.ru_stime))
    for i in range(n):
        if ok[i]:
            run.scheduled_ns.append(scheduled[i])
            run.sent_ns.append(sent[i])
            run.done_ns.append(done[i])
        elif sent[i]:
            run.errors += 1
    return run


# --- the host --------------------------------------------------------------------------------


class RunnableSampler:
    """Samples the host's runnable threads (/proc/loadavg, 4th field) every 0.25 s in the
    background: the CPU contention a run met, beyond the 1-minute load average's lag."""

    def __init__(self):
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.wait(0.25):
            self.samples.append(runnable_now())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def runnable_now() -> int:
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])


def wait_for_quiet(limit: float, max_s: float) -> float:
    """Wait (at most ``max_s``) until the host's runnable threads, averaged over 3 s, are at most
    ``limit``; returns that average. Other people's jobs share this machine: a run in the middle
    of theirs measures them."""
    deadline = time.monotonic() + max_s
    while True:
        samples = []
        for _ in range(12):
            samples.append(runnable_now())
            time.sleep(0.25)
        mean = sum(samples) / len(samples)
        if mean <= limit or time.monotonic() > deadline:
            return mean
        print(f"# waiting for a quieter host: {mean:.1f} runnable threads > {limit:g}",
              file=sys.stderr)


# --- the server -----------------------------------------------------------------------------


def model_stats(http_port: int, name: str) -> dict:
    """Triton's statistics of model ``name``, summed up: counts, queue and compute ns, and per
    batch size (executions, compute ns)."""
    stats = triton_model_stats(http_port, name)
    infer = stats["inference_stats"]
    batches = {}
    for entry in stats.get("batch_stats") or []:
        parts = [entry.get(k) or {} for k in ("compute_input", "compute_infer", "compute_output")]
        batches[int(entry["batch_size"])] = (int(parts[1].get("count", 0)),
                                             sum(int(x.get("ns", 0)) for x in parts))
    return {"executions": int(stats.get("execution_count", 0)),
            "inferences": int(stats.get("inference_count", 0)),
            "queue_ns": int(infer["queue"]["ns"]), "compute_ns": int(infer["compute_infer"]["ns"]),
            "requests": int(infer["success"]["count"]), "batches": batches}


def batch_compute_ms(before: dict, after: dict) -> dict[int, tuple[int, float]]:
    """Per executed batch size between two stats: (executions, mean server compute ms), where
    compute is Triton's compute_input + compute_infer + compute_output (no queueing)."""
    out = {}
    for k, (count, ns) in after["batches"].items():
        count0, ns0 = before["batches"].get(k, (0, 0))
        if count > count0:
            out[k] = (count - count0, (ns - ns0) / (count - count0) / 1e6)
    return out


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of every live process in the process group (tritonserver and
    its python backend stubs)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@contextlib.contextmanager
def tritonserver(workdir: Path, model, outputs, max_batch: int, delay_ms: float, threads: int,
                 server_cpus: set[int] | None):
    """tritonserver with the ``curve`` and ``served`` models; yields (http port, pid)."""
    install = locate_tritonserver(None)
    repo = workdir / "repository"
    build_repository(model, repo, ServingConfig(max_batch_size=max_batch, max_queue_delay_us=0,
                                                threads=threads), model_name=CURVE,
                     outputs=outputs)
    build_repository(model, repo, ServingConfig(max_batch_size=max_batch,
                                                max_queue_delay_us=round(delay_ms * 1000),
                                                threads=threads), model_name=SERVED,
                     outputs=outputs)
    server, ports = loopback_server(install, repo, workdir)
    mine = os.sched_getaffinity(0)
    if server_cpus:
        os.sched_setaffinity(0, server_cpus)  # the server and its stubs inherit it
    try:
        server.start()
    finally:
        os.sched_setaffinity(0, mine)
    try:
        server.wait_ready(300, models=[CURVE, SERVED])
        yield ports.http, server.pid
    finally:
        server.stop(grace_s=5)


# --- the comparison -------------------------------------------------------------------------


def ms(ns_values: list[int], q: float) -> float:
    return percentile(sorted(ns_values), q) / 1e6


BUILTINS = tuple(BUILTIN_VERSIONS)


def benchmark_model(name: str, workdir: Path):
    """A builtin, or ``wide-mlp``: 1024-4096-4096-10 (21 M parameters, fixed seed), traced to
    TorchScript here and served from the file. Its batch of 1 streams 80 MB of weights (several
    ms on one thread) and larger batches reuse them, so service time grows slowly with the batch
    (as on a GPU) and the per-request work of HTTP and the python backend is small beside it."""
    if name in BUILTINS:
        return load_model(f"builtin:{name}", digest=None, format="torchscript", inputs=())
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1024, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(),
                        nn.Linear(4096, 10)).eval()
    path = workdir / "wide-mlp.pt"
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(net, torch.randn(2, 1024)), str(path))
    return load_model(str(path), digest=None, format="torchscript",
                      inputs=[InputSpec("input", (1024,), "float32")])


def run(args: argparse.Namespace) -> dict:
    """One run per model in ``args.model`` (comma-separated): {"runs": [{facts, rows}, ...]}."""
    runs = []
    for name in args.model:
        with tempfile.TemporaryDirectory(prefix="hp-validate-") as tmp:
            runs.append(_run(args, name, Path(tmp)))
    return {"runs": runs}


def _run(args: argparse.Namespace, name: str, tmp: Path) -> dict:
    model = benchmark_model(name, tmp)
    outputs = check_model_inputs(model)
    batches = sorted({b for b in args.curve_batch_sizes if b <= args.max_batch_size}
                     | {args.max_batch_size})
    server_cpus = {args.pin_server} if args.pin_server is not None else None
    generator_cpus = {args.pin_generator} if args.pin_generator is not None else None
    if args.pin_generator is not None and args.generator == "python":
        os.sched_setaffinity(0, {args.pin_generator})
    facts = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": platform.node(), "cpu": cpu_model_name(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "command": " ".join(sys.argv),
        "model": f"builtin:{name}" if name in BUILTINS else name,
        "maxBatchSize": args.max_batch_size,
        "maxQueueDelayMs": args.queue_delay_ms, "threadsPerInstance": args.threads,
        "pinServer": args.pin_server, "pinGenerator": args.pin_generator,
        "loadAverageBefore": os.getloadavg()[0],
    }
    rows = []
    with tritonserver(tmp, model, outputs, args.max_batch_size, args.queue_delay_ms,
                      args.threads, server_cpus) as (port, pid):
        def arrays(batch: int) -> list:
            return [t.numpy() for t in synthetic_inputs(model.inputs, batch)]

        messages = {b: http_infer_message(model, outputs, arrays(b), CURVE, "127.0.0.1") for b in batches}
        one = http_infer_message(model, outputs, arrays(1), SERVED, "127.0.0.1")
        for _ in range(20):  # warm the served model's instance
            conn = KeepAliveConnection("127.0.0.1", port)
            conn.roundtrip(one)
            conn.close()
        before = measure_curve(port, messages, args.curve_window_s)
        args.overhead_ms, sat_rps, sat_batch = 0.0, None, None
        if args.request_overhead:
            args.overhead_ms, sat_rps, sat_batch = measure_request_overhead(
                port, one, args.max_batch_size, 3.0, pooled_curve(before))
            facts.update(requestOverheadMs=args.overhead_ms, saturatedRps=sat_rps,
                         saturatedMeanBatch=sat_batch)
            print(f"# saturated with single-item requests: {sat_rps:.1f} requests/s, mean batch "
                  f"{sat_batch:.2f}: {args.overhead_ms:.4f} ms per request beyond the curve",
                  file=sys.stderr)
        capacity = pooled_curve(before, overhead_ms=args.overhead_ms).throughput_rps(
            args.max_batch_size)
        facts["capacityRps"] = capacity
        print(f"# {facts['model']} B={args.max_batch_size} D={args.queue_delay_ms} ms, "
              f"{args.threads} thread(s); capacity B/s(B) = {capacity:.1f} requests/s "
              f"(first curve)", file=sys.stderr)
        order = [u for _ in range(args.rounds) for u in args.utilisations]
        for index, utilisation in enumerate(order):
            quiet = wait_for_quiet(args.quiet, args.quiet_wait_s) if args.quiet else None
            if quiet is not None and index:
                before = measure_curve(port, messages, args.curve_window_s)  # after waiting
            if args.request_overhead and args.request_overhead_every_rate and index:
                # Measured again before each rate, like the curve: the host's speed drifts
                # (benchmarks/capacity_drift.py), and the overhead sets the capacity the rate is
                # aimed at. Off by default: on this host a 3 s measurement swings as much.
                args.overhead_ms, sat_rps, sat_batch = measure_request_overhead(
                    port, one, args.max_batch_size, 3.0, pooled_curve(before))
            # The rate from the latest curve: capacity moves with the host's other load.
            rate = utilisation * pooled_curve(before, overhead_ms=args.overhead_ms).throughput_rps(
                args.max_batch_size)
            requests = min(args.max_requests, max(200, round(rate * args.seconds)))
            # Two windows at the rate: the first is what the operator's calibration observes
            # (one window), the second is the one predicted, with and without that calibration.
            overhead = {"requestOverheadMs": args.overhead_ms, "saturatedRps": sat_rps,
                        "saturatedMeanBatch": sat_batch}
            windows = []
            for w in range(2):
                stats0, cpu0 = model_stats(port, SERVED), group_cpu_seconds(pid)
                with RunnableSampler() as host:
                    seed, limit_s = args.seed + 2 * index + w, args.seconds * 2 + 10
                    if args.generator == "go":
                        load = measured(go_load(go_generator(), port, one, rate, requests, seed,
                                                args.connections, limit_s, tmp, generator_cpus))
                    else:
                        load = measured(poisson_load(port, one, rate, requests, seed,
                                                     args.connections, limit_s=limit_s))
                stats1, cpu1 = model_stats(port, SERVED), group_cpu_seconds(pid)
                windows.append((load, stats0, stats1, cpu1 - cpu0, host.mean))
            after = measure_curve(port, messages, args.curve_window_s)
            observed, checked = (compare(args, utilisation, *window[:1], before, after, *window[1:])
                                 for window in windows)
            rows.append(dict(calibrated(checked, observed, args.seconds), **overhead))
            print(_row_text(rows[-1]), file=sys.stderr)
            before = after
    facts["loadAverageAfter"] = os.getloadavg()[0]
    return {"facts": facts, "rows": rows}


def measured(load: LoadRun) -> dict:
    """The figures of one generator window: latency percentiles, achieved rate, lateness, CPU."""
    # The first 5% of requests meet an empty server: a transient, left out.
    skip = len(load.sent_ns) // 20
    latency = [d - s for s, d in zip(load.sent_ns[skip:], load.done_ns[skip:], strict=True)]
    late = [s - c for c, s in zip(load.scheduled_ns, load.sent_ns, strict=True)]
    return {
        "rateRps": load.rate_rps, "seconds": load.seconds,
        "achievedRps": len(load.sent_ns) / load.seconds if load.seconds else 0.0,
        "requests": len(latency), "errors": load.errors, "timedOut": load.timed_out,
        "p50Ms": ms(latency, 50), "p95Ms": ms(latency, 95), "p99Ms": ms(latency, 99),
        "sendLateP50Ms": ms(late, 50), "sendLateP95Ms": ms(late, 95),
        "generatorCpuShare": load.generator_cpu_s / load.seconds if load.seconds else None,
    }


def go_generator() -> Path:
    """benchmarks/loadgen built with the local Go toolchain (standard library only) into
    $HP_CACHE/bin, keyed by its source's hash; built once."""
    source = Path(__file__).resolve().parent / "loadgen"
    digest = hashlib.sha256((source / "main.go").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("HP_CACHE") or Path.home() / ".cache" / "hybridplace")
    binary = cache / "bin" / f"hp-loadgen-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=source, check=True,
                       env=dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod"))
    return binary


def go_load(binary: Path, port: int, message: bytes, rate_rps: float, requests: int, seed: int,
            connections: int, limit_s: float, workdir: Path, cpus: set[int] | None) -> LoadRun:
    """``poisson_load`` done by benchmarks/loadgen (Go): the same schedule rule and figures, a
    few microseconds of CPU per request instead of the Python generator's hundred or so."""
    request = workdir / "request.bin"
    request.write_bytes(message)
    proc = subprocess.run(
        [str(binary), "-addr", f"127.0.0.1:{port}", "-request", str(request),
         "-rate", repr(rate_rps), "-n", str(requests), "-seed", str(seed),
         "-conns", str(connections), "-limit", f"{limit_s}s"],
        capture_output=True, text=True, timeout=limit_s + 60,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    run = LoadRun(rate_rps, errors=out["errors"], seconds=0.0,
                  generator_cpu_s=out["cpuSeconds"], timed_out=out["timedOut"])
    for scheduled, sent, done, ok in zip(out["scheduled"], out["sent"], out["done"], out["ok"],
                                         strict=True):
        if ok:
            run.scheduled_ns.append(scheduled)
            run.sent_ns.append(sent)
            run.done_ns.append(done)
    run.seconds = max(run.done_ns) / 1e9 if run.done_ns else 0.0
    return run


def compare(args, utilisation, load: dict, before, after, stats0, stats1, server_cpu_s,
            runnable) -> dict:
    curve = pooled_curve(before, after, overhead_ms=args.overhead_ms)
    insitu, ratio = in_situ_curve(curve, pooled(before, after), batch_compute_ms(stats0, stats1))
    achieved = load["achievedRps"]
    # Predict at the rate actually achieved (the generator may fall a little short).
    predicted = predict_latency(curve, achieved, args.max_batch_size, args.queue_delay_ms, 95)
    p50 = predict_latency(curve, achieved, args.max_batch_size, args.queue_delay_ms, 50)
    try:
        simulated = simulate_latency(curve, achieved, args.max_batch_size, args.queue_delay_ms,
                                     requests=20000, seed=1).percentiles_ms[95]
    except ValueError:
        simulated = float("inf")
    in_situ = predict_latency(insitu, achieved, args.max_batch_size, args.queue_delay_ms, 95)
    executions = stats1["executions"] - stats0["executions"]
    inferences = stats1["inferences"] - stats0["inferences"]
    measured_p95 = load["p95Ms"]
    return {
        "utilisation": utilisation, "generator": args.generator, "rateRps": load["rateRps"],
        "achievedRps": achieved, "requests": load["requests"], "errors": load["errors"],
        "timedOut": load["timedOut"],
        "measuredP50Ms": load["p50Ms"], "measuredP95Ms": measured_p95,
        "measuredP99Ms": load["p99Ms"],
        "predictedP50Ms": p50.latency_ms, "predictedP95Ms": predicted.latency_ms,
        "simulatedP95Ms": simulated,
        "errorP95": predicted.latency_ms / measured_p95 - 1,
        "serviceUnderLoadRatio": ratio, "inSituP95Ms": in_situ.latency_ms,
        "inSituErrorP95": in_situ.latency_ms / measured_p95 - 1,
        "hostRunnable": runnable,
        "predictedUtilisation": predicted.utilisation,
        "measuredMeanBatch": inferences / executions if executions else None,
        "predictedMeanBatch": predicted.mean_batch_size,
        "serverQueueMs": ((stats1["queue_ns"] - stats0["queue_ns"]) / 1e6
                          / max(1, stats1["requests"] - stats0["requests"])),
        # Triton adds a batch's compute to each of its requests: this is per request.
        "serverComputeMsPerRequest": ((stats1["compute_ns"] - stats0["compute_ns"]) / 1e6
                                      / max(1, stats1["requests"] - stats0["requests"])),
        "serverComputeMsPerBatchSize": {str(k): v for k, v in
                                        sorted(batch_compute_ms(stats0, stats1).items())},
        "sendLateP50Ms": load["sendLateP50Ms"], "sendLateP95Ms": load["sendLateP95Ms"],
        "generatorCpuShare": load["generatorCpuShare"],
        "serverCpuShare": server_cpu_s / load["seconds"] if load["seconds"] else None,
        "curve": {str(b): {"meanMs": m, "p50Ms": p50, "p95Ms": p95, "p99Ms": p99}
                  for b, m, p50, p95, p99 in zip(curve.batch_sizes, curve.mean_ms, curve.p50_ms,
                                                 curve.p95_ms, curve.p99_ms, strict=True)},
        "curveLag1Autocorrelation": {str(p.batch_size): lag1_autocorrelation(p.latencies_ns)
                                     for p in before},
        "curveP50Before": {str(p.batch_size): ms(p.latencies_ns, 50) for p in before},
        "curveP50After": {str(p.batch_size): ms(p.latencies_ns, 50) for p in after},
    }


def calibrated(row: dict, observed: dict, window_s: float) -> dict:
    """``row`` with the prediction corrected by the operator's own calibration
    (placement.calibration, default policy: the first sample is taken whole, then clamped)
    from the ``observed`` window at the same rate, just before."""
    sample = CalibrationSample(at=window_s, observed_ms=observed["measuredP95Ms"],
                               predicted_ms=observed["predictedP95Ms"],
                               rate_rps=observed["achievedRps"],
                               per_replica_rps=observed["achievedRps"], window_s=window_s)
    # Ready long before the window (no warm-up to skip: the server has been serving).
    got = calibrate(CalibrationPolicy(warmup_s=0.0), None, SERVED, sample, ready_since=0.0)
    ratio = got.ratio if got is not None else 1.0
    return dict(row, observationP95Ms=observed["measuredP95Ms"],
                observationPredictedP95Ms=observed["predictedP95Ms"],
                observationErrorP95=observed["errorP95"], calibration=ratio,
                calibrationUsed=got is not None,
                calibratedP95Ms=ratio * row["predictedP95Ms"],
                calibratedErrorP95=ratio * row["predictedP95Ms"] / row["measuredP95Ms"] - 1)


def _row_text(r: dict) -> str:
    return (f"u={r['utilisation']:.2f} rate {r['achievedRps']:7.1f}/s n={r['requests']:5d}  "
            f"p95 measured {r['measuredP95Ms']:7.2f} predicted {r['predictedP95Ms']:7.2f} "
            f"({r['errorP95']:+.1%}) calibrated x{r['calibration']:.2f} {r['calibratedP95Ms']:7.2f} "
            f"({r['calibratedErrorP95']:+.1%}) in situ {r['inSituP95Ms']:7.2f} ({r['inSituErrorP95']:+.1%}, "
            f"x{r['serviceUnderLoadRatio']:.2f}) simulated {r['simulatedP95Ms']:7.2f}  batch "
            f"{r['measuredMeanBatch'] or 0:.2f} vs {r['predictedMeanBatch']:.2f}  late p95 "
            f"{r['sendLateP95Ms']:.2f} ms  cpu gen {r['generatorCpuShare'] or 0:.2f} "
            f"server {r['serverCpuShare'] or 0:.2f}  host runnable {r['hostRunnable']:.1f}"
            + (f"  saturated {r['saturatedRps']:.0f}/s" if r.get("saturatedRps") else ""))


def table(result: dict) -> str:
    f = result["facts"]
    lines = [
        f"{f['date']}  {f['cpu']} ({f['cpus']} CPUs), Python {f['python']}, load average "
        f"{f['loadAverageBefore']:.1f} -> {f['loadAverageAfter']:.1f}",
        f"{f['model']} on tritonserver, max batch {f['maxBatchSize']}, queue delay "
        f"{f['maxQueueDelayMs']:g} ms, 1 instance x {f['threadsPerInstance']} thread(s); "
        f"capacity B/s(B) {f['capacityRps']:.1f} requests/s",
        "",
        "| util aimed / model | rate (rps) | requests | measured p50 ms | measured p95 ms | predicted p95 ms "
        "(error) | calibration from the window before | calibrated p95 ms (error) | "
        "service under load / profile | in-situ p95 ms (error) | simulated p95 ms | "
        "mean batch Triton / model | generator late p95 ms | host runnable |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['utilisation']:.2f} / {r['predictedUtilisation']:.2f} | {r['achievedRps']:.1f} | {r['requests']} | "
            f"{r['measuredP50Ms']:.2f} | {r['measuredP95Ms']:.2f} | {r['predictedP95Ms']:.2f} "
            f"({r['errorP95']:+.1%}) | x{r['calibration']:.2f} ({r['observationP95Ms']:.2f} / "
            f"{r['observationPredictedP95Ms']:.2f}) | {r['calibratedP95Ms']:.2f} "
            f"({r['calibratedErrorP95']:+.1%}) | x{r['serviceUnderLoadRatio']:.2f} | "
            f"{r['inSituP95Ms']:.2f} ({r['inSituErrorP95']:+.1%}) | {r['simulatedP95Ms']:.2f} | "
            f"{r['measuredMeanBatch'] or 0:.2f} / {r['predictedMeanBatch']:.2f} | "
            f"{r['sendLateP95Ms']:.2f} | {r['hostRunnable']:.1f} |")
    for key, what in (("errorP95", "from the profile"),
                      ("calibratedErrorP95", "calibrated from one window"),
                      ("inSituErrorP95", "in situ")):
        errors = sorted(abs(r[key]) for r in result["rows"])
        within = sum(e <= 0.15 for e in errors)
        lines.append(f"p95 {what}: within 15% on {within} of {len(errors)}; median error "
                     f"{errors[len(errors) // 2]:.1%}, worst {errors[-1]:.1%}")
    return "\n".join(["", *lines[:2], *lines[2:]])


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x]


def _cpu(text: str) -> int | None:
    return None if text == "none" else int(text)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=lambda t: [m for m in t.split(",") if m], default=["delay", "mlp"],
                   help="comma-separated: builtins (delay: a fixed service time, slept; mlp) or "
                   "wide-mlp (traced here); one server and table per model")
    p.add_argument("--max-batch-size", type=int, default=8, help="B of the served model")
    p.add_argument("--queue-delay-ms", type=float, default=2.0, help="D of the served model")
    p.add_argument("--threads", type=int, default=1, help="torch threads per instance")
    p.add_argument("--curve-batch-sizes", type=_ints, default=[1, 2, 4, 8])
    p.add_argument("--curve-window-s", type=float, default=1.0,
                   help="each of the three windows per batch size")
    p.add_argument("--utilisations", type=_floats, default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85],
                   help="arrival rates as fractions of B/s(B)")
    p.add_argument("--rounds", type=int, default=1, help="repeat the utilisations")
    p.add_argument("--seconds", type=float, default=20.0,
                   help="load duration per window (two windows per rate)")
    p.add_argument("--max-requests", type=int, default=150000, help="requests per window at most")
    p.add_argument("--connections", type=int, default=256,
                   help="generator connections (each sends one request at a time)")
    p.add_argument("--generator", choices=("go", "python"), default="go",
                   help="the open-loop generator: go (benchmarks/loadgen, built here with the "
                   "local Go toolchain; keeps a schedule of thousands of requests/s on one core) "
                   "or python (threads in this process; falls behind above about 4,000/s)")
    p.add_argument("--seed", type=int, default=1)
    cpus = sorted(os.sched_getaffinity(0))
    p.add_argument("--pin-server", type=_cpu, default=cpus[0] if len(cpus) >= 2 else None,
                   metavar="CPU", help="run tritonserver and its stubs on this CPU only (default: "
                   "the first CPU this process may use, where it may use two or more: a replica "
                   "with one CPU; 'none': anywhere)")
    p.add_argument("--pin-generator", type=_cpu, default=cpus[1] if len(cpus) >= 2 else None,
                   metavar="CPU", help="run the load generator on this CPU only (default: the "
                   "second, so that it never takes the server's; 'none': anywhere)")
    p.add_argument("--quiet", type=float, default=3.0, metavar="THREADS",
                   help="before each rate, wait until the host has at most this many runnable "
                   "threads (3 s average); 0: do not wait")
    p.add_argument("--quiet-wait-s", type=float, default=300.0,
                   help="wait at most this long for --quiet, then run anyway")
    p.add_argument("--request-overhead", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the served model's time per single-item request beyond the "
                   "curve (3 s saturated with 2B connections, closed loop) and add it per item to "
                   "every curve: the profile's one request of b items does not pay b requests' "
                   "HTTP and backend work (default: on)")
    p.add_argument("--request-overhead-every-rate", action="store_true",
                   help="measure the per-request overhead again before every rate (as the curve "
                   "is), not once at the start; each row records the one it used")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--plot", type=Path, default=None,
                   help="also draw measured, predicted and calibrated p95 against utilisation, "
                   "one panel per model, into this PNG")
    args = p.parse_args(argv)
    unknown = [m for m in args.model if m not in (*BUILTINS, "wide-mlp")]
    if unknown or not args.model:
        p.error(f"--model: unknown {unknown or 'nothing'}; choose from {', '.join((*BUILTINS, 'wide-mlp'))}")
    result = run(args)
    for one in result["runs"]:
        print(table(one))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(result, args.plot)
        print(f"\nwrote {args.plot}")
    return 0


def plot(result: dict, path: Path) -> None:
    """One panel per model: measured p95 of the checked window, the model's prediction, and the
    prediction calibrated from the window before, against the model's utilisation; the 15%
    band around the measurement shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.2), squeeze=False)
    for ax, one in zip(axes[0], runs, strict=True):
        rows = sorted(one["rows"], key=lambda r: r["utilisation"])
        x = [r["utilisation"] for r in rows]
        measured = [r["measuredP95Ms"] for r in rows]
        ax.fill_between(x, [m * 0.85 for m in measured], [m * 1.15 for m in measured],
                        color="0.85", label="measured +-15%")
        ax.plot(x, measured, "o-", color="black", label="measured p95 (tritonserver)")
        ax.plot(x, [r["predictedP95Ms"] for r in rows], "s--", color="tab:blue",
                label="model (profile only)")
        ax.plot(x, [r["calibratedP95Ms"] for r in rows], "^:", color="tab:orange",
                label="model calibrated from one window")
        f = one["facts"]
        ax.set_title(f"{f['model']}: B={f['maxBatchSize']}, D={f['maxQueueDelayMs']:g} ms")
        ax.set_xlabel("utilisation (load / full-batch throughput)")
        ax.set_ylabel("p95 latency (ms)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"latency model vs a real tritonserver, open-loop Poisson load "
                 f"({runs[0]['facts']['date'][:10]}, {runs[0]['facts']['cpu']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
