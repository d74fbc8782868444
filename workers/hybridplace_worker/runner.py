"""Runs one ``bench`` or ``serve`` under the deadline and turns every outcome into one document.

Order matters: the watchdog starts before torch is imported, so a worker that hangs anywhere
(importing, downloading, waiting for tritonserver, measuring) still ends with a ``Timeout``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from . import __version__, watchdog
from .cli import MAX_DEADLINE_S, PROCESS_START, env_name, parse_args
from .errors import EXIT_CODES, Reason, WorkerError
from .result import DEFAULT_TERMINATION_LOG, ResultSink, error_document

FIXED_OVERHEAD_S = 2.0  # time kept free at the deadline to stop servers and write the result


def _prescan(argv: Sequence[str]) -> argparse.Namespace:
    """The options needed before full parsing (where errors go, the deadline), leniently."""
    p = argparse.ArgumentParser(add_help=False)
    for opt in ("--termination-log", "--output", "--deadline-seconds"):
        p.add_argument(opt, default=os.environ.get(env_name(opt)))
    ns, _ = p.parse_known_args(list(argv))
    try:
        ns.deadline_seconds = float(ns.deadline_seconds) if ns.deadline_seconds else 600.0
        if not 0 < ns.deadline_seconds <= MAX_DEADLINE_S:  # also nan and inf
            raise ValueError
    except ValueError:
        ns.deadline_seconds = 600.0  # the full parse reports the bad value
    if ns.termination_log is None:
        ns.termination_log = DEFAULT_TERMINATION_LOG
    if "serve" in argv and ns.output is None:
        ns.output = None  # serve prints nothing on success; errors go to stderr
    elif ns.output is None:
        ns.output = "-"
    return ns


def _log(message: str) -> None:
    sys.stderr.write(f"hybridplace-worker: {message}\n")
    sys.stderr.flush()


def run(argv: Sequence[str], *, started: float | None = PROCESS_START, handle_signals: bool = True) -> int:
    """Run one command; returns the exit code. ``started`` (monotonic) is when the deadline
    starts counting: the process start for the CLI, now (None) when embedded, as tests do."""
    pre = _prescan(argv)
    sink = ResultSink(pre.termination_log, pre.output)
    # The run's temporary folders (a download, the triton engine's repository and server
    # files): removed however the run ends, its deadline and SIGTERM included (expire()
    # leaves by os._exit, past every finally and TemporaryDirectory).
    temp_dirs: list[str] = []

    def remove_temp_dirs() -> None:
        for folder in temp_dirs:
            shutil.rmtree(folder, ignore_errors=True)

    def expire(message: str) -> None:
        doc = error_document(Reason.TIMEOUT, message)
        if sink.finish(doc):
            _log(f"{Reason.TIMEOUT}: {message}")
            watchdog.kill_children()
            remove_temp_dirs()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_CODES[Reason.TIMEOUT])

    dog = watchdog.Watchdog(pre.deadline_seconds, expire, started=started).start()
    if handle_signals:
        watchdog.install_sigterm(expire)
    try:
        args = parse_args(argv)
        try:
            scheme = urllib.parse.urlparse(args.model).scheme
        except ValueError as exc:  # e.g. an unclosed IPv6 bracket
            raise WorkerError(Reason.INVALID_ARGUMENT, f"--model {args.model!r} is not a valid URL: {exc}") from None
        # A downloaded model lives as long as the run (a 2 GB file must not pile up in /tmp).
        download_dir = None
        if scheme in ("http", "https"):
            temp_dirs.append(tempfile.mkdtemp(prefix="hp-model-"))
            download_dir = Path(temp_dirs[-1])
        if args.command == "bench":
            full = bench(args, dog, downloads=download_dir, temp_dirs=temp_dirs)
            sink.finish(full)
            return _exit_code(sink)
        return serve(args, dog, sink, downloads=download_dir, temp_dirs=temp_dirs)
    except WorkerError as exc:
        _log(f"{exc.reason}: {exc.message}")
        sink.finish(error_document(exc.reason, exc.message))
        return exc.exit_code
    except Exception as exc:  # a bug: still one JSON document, never a bare stack trace
        traceback.print_exc()
        sink.finish(error_document(Reason.INTERNAL, f"{type(exc).__name__}: {exc}"))
        return EXIT_CODES[Reason.INTERNAL]
    finally:
        dog.cancel()
        watchdog.kill_children()
        remove_temp_dirs()


def _exit_code(sink: ResultSink) -> int:
    """0, or the reason's code when the result could not be written (the sink says why)."""
    doc = sink.finished or {}
    if doc.get("ok", True):
        return 0
    _log(f"{doc['reason']}: {doc['message']}")
    return EXIT_CODES.get(Reason(doc["reason"]), EXIT_CODES[Reason.INTERNAL])


# ---------------------------------------------------------------------------------------------
# bench


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(x: float, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def point_document(batch: int, m) -> dict:
    """A full-result point; its first nine keys are exactly ModelProfile's point fields."""
    return {
        "batchSize": batch,
        "concurrency": m.concurrency,
        "p50Ms": _round(m.p50_ms),
        "p95Ms": _round(m.p95_ms),
        "p99Ms": _round(m.p99_ms),
        "throughputRps": _round(m.throughput_rps, 3),
        "throughputIps": _round(m.throughput_rps * batch, 3),
        "spread": _round(m.spread, 4) if math.isfinite(m.spread) else 1.0,
        "stable": m.stable,
        "meanMs": _round(m.mean_ms),
        "minMs": _round(m.min_ms),
        "maxMs": _round(m.max_ms),
        "samples": m.samples,
        "windows": [
            {k: (_round(v, 4) if isinstance(v, float) else v) for k, v in w.items()} for w in m.window_summary()
        ],
    }


def _check_plan_fits(n_points: int, plan, deadline_s: float, extra_s: float = 0.0, budget=None) -> None:
    """``n_points``: the grid's points; ``extra_s``: measurement after the points (the triton
    engine's request overhead); ``budget`` (search.Budget): at most its points are measured,
    and none starts after its seconds, so the points take at most those and one point more."""
    if budget is not None and budget.points is not None:
        n_points = min(n_points, budget.points)  # the rest are skipped, not measured
    points_s = n_points * plan.min_seconds
    if budget is not None and budget.seconds is not None:
        points_s = min(points_s, budget.seconds + plan.min_seconds)
    needed = points_s + extra_s
    if needed + FIXED_OVERHEAD_S > deadline_s:
        also = f" (with --request-overhead-seconds {extra_s:g})" if extra_s else ""
        raise WorkerError(
            Reason.INVALID_ARGUMENT,
            f"{n_points} points need at least {needed:.0f} s of warm-up and measurement{also}, more "
            f"than --deadline-seconds {deadline_s:g}; raise the deadline or lower --duration-seconds, "
            "--warmup-seconds or the number of batch sizes and concurrency levels",
        )


def _serving_config(args, *, default_max_batch: int, default_kind: str):
    from .triton_repo import ServingConfig

    instances = args.instances
    threads = args.threads
    if threads == 0:
        from .device import available_cpus

        threads = max(1, available_cpus() // max(instances, 1))
    cfg = ServingConfig(
        max_batch_size=default_max_batch if args.max_batch_size is None else args.max_batch_size,
        preferred_batch_sizes=tuple(args.preferred_batch_size or ()),
        max_queue_delay_us=round(args.max_queue_delay_ms * 1000),
        instance_kind=args.instance_kind or default_kind,
        instances=instances,
        threads=threads,
    )
    cfg.validate()
    return cfg


def bench(
    args: argparse.Namespace, dog: watchdog.Watchdog, downloads: Path | None = None, temp_dirs: list[str] | None = None
) -> dict:
    """Measure the model; return the full result document. A model given by URL is downloaded
    into ``downloads``; the triton engine's folder is added to ``temp_dirs`` (the caller removes
    them however the run ends)."""
    from .spec import check_batch_fits, parse_input_specs
    from .timing import StabilityRule, WindowPlan

    inputs = parse_input_specs(args.input)
    check_batch_fits(inputs, args.batch_sizes)
    try:
        rule = StabilityRule(args.stability_threshold, args.stable_windows, args.max_windows)
        plan = WindowPlan(
            window_s=args.duration_seconds / args.stable_windows,
            warmup_s=args.warmup_seconds,
            rule=rule,
        )
    except ValueError as exc:
        raise WorkerError(Reason.INVALID_ARGUMENT, str(exc)) from exc
    from .search import ADAPTIVE, Budget, adaptive_search, grid_search

    budget = Budget(points=args.budget_points, seconds=args.budget_seconds)
    n_points = len(args.batch_sizes) * len(args.concurrency)
    overhead_s = args.request_overhead_seconds if args.engine == "triton" else 0.0
    _check_plan_fits(n_points, plan, args.deadline_seconds, overhead_s, budget)
    started_at = _now_rfc3339()
    t0 = time.monotonic()

    import torch  # after the watchdog: importing torch takes seconds

    from .device import available_cpus, describe_device, require_cuda
    from .models import check_model_inputs, load_model

    if args.device == "cuda":
        require_cuda(torch)
    model = load_model(
        args.model,
        digest=args.digest,
        format=args.format,
        inputs=inputs,
        deadline=dog.deadline + 1,
        cache_dir=downloads,
    )  # the watchdog, not the socket, ends a slow download
    outputs = check_model_inputs(model)  # InputMismatch here, with the spec in the message, not mid-sweep
    _log(f"loaded {model.name} ({model.digest}) in {time.monotonic() - t0:.1f} s")

    points_left = [n_points if budget.points is None else min(n_points, budget.points)]
    after_points = [0.0]  # what must still fit after the last point (the triton engine's tail)

    def may_extend() -> bool:
        # One more window only if every remaining point still gets its minimum, and what
        # follows the points (request overhead, stopping the server) its time.
        spare = dog.remaining() - FIXED_OVERHEAD_S - (points_left[0] - 1) * plan.min_seconds - after_points[0]
        return spare > plan.window_s

    def on_point(batch: int, m) -> None:
        points_left[0] -= 1
        flag = "stable" if m.stable else "UNSTABLE"
        _log(
            f"b={batch} c={m.concurrency}: p50 {m.p50_ms:.3f} ms p99 {m.p99_ms:.3f} ms "
            f"{m.throughput_rps:.1f} req/s spread {m.spread:.3f} {flag} ({len(m.windows)} windows)"
        )

    # Which points: the search (search.py, its budget above) drives the engine's measure(batch, concurrency).
    outcomes: list = []
    overhead: dict = {}  # the triton engine's request overhead measurement, when made

    def drive(measure) -> None:
        if args.search == ADAPTIVE:
            outcome = adaptive_search(
                args.batch_sizes,
                args.concurrency,
                measure,
                slo_ms=args.slo_ms,
                percentile=args.slo_percentile,
                budget=budget,
            )
        else:
            outcome = grid_search(args.batch_sizes, args.concurrency, measure, budget)
        outcomes.append(outcome)

    settings = {
        "search": args.search,
        "sloMs": args.slo_ms,
        "sloPercentile": args.slo_percentile,
        "budgetPoints": args.budget_points,
        "budgetSeconds": args.budget_seconds,
        "batchSizes": args.batch_sizes,
        "concurrency": args.concurrency,
        "durationSeconds": args.duration_seconds,
        "windowSeconds": plan.window_s,
        "warmupSeconds": plan.warmup_s,
        "stableWindows": rule.stable_windows,
        "maxWindows": rule.max_windows,
        "stabilityThreshold": rule.threshold,
        "deadlineSeconds": args.deadline_seconds,
    }
    if args.engine == "torch":
        from .engine_torch import run_torch_engine

        threads = args.threads or available_cpus()
        settings["timer"] = "host-clock" if args.device == "cpu" else f"cuda-{args.gpu_timer}"
        results = run_torch_engine(
            model,
            device=args.device,
            batch_sizes=args.batch_sizes,
            concurrency=args.concurrency,
            plan=plan,
            threads=threads,
            gpu_timer=args.gpu_timer,
            may_extend=may_extend,
            on_point=on_point,
            search=drive,
        )
    else:
        from .engine_triton import overhead_step_seconds, run_triton_engine
        from .triton_server import STOP_RESERVE_S

        serving = _serving_config(
            args,
            default_max_batch=max(args.batch_sizes),
            default_kind="gpu" if args.device == "cuda" else "cpu",
        )
        threads = serving.threads
        if serving.instance_kind == "gpu":
            require_cuda(torch)  # KIND_GPU instances need a GPU whatever --device says
        settings["protocol"] = args.protocol
        settings["triton"] = {
            "maxBatchSize": serving.max_batch_size,
            "preferredBatchSizes": list(serving.preferred_batch_sizes),
            "maxQueueDelayMicroseconds": serving.max_queue_delay_us,
            "instanceKind": serving.instance_kind,
            "instances": serving.instances,
            "threadsPerInstance": serving.threads,
        }
        start_timeout = min(args.server_start_timeout_seconds, max(dog.remaining() - FIXED_OVERHEAD_S, 1))
        after_points[0] = STOP_RESERVE_S + (overhead_step_seconds(overhead_s) if serving.max_batch_size > 1 else 0.0)
        workdir = None  # without a caller to remove it, the engine makes (and removes) its own
        if temp_dirs is not None:
            workdir = tempfile.mkdtemp(prefix="hp-triton-")
            temp_dirs.append(workdir)

        def on_ready(facts: dict) -> None:
            settings["triton"]["readySeconds"] = facts["readySeconds"]
            _log(f"tritonserver pid {facts['pid']} ready in {facts['readySeconds']} s")

        def on_overhead(facts: dict) -> None:
            overhead.update(facts)
            if "error" in facts or "skipped" in facts:
                why = facts.get("error") or facts["skipped"]
                _log(f"request overhead not measured (the profile goes without it): {why}")
                return
            _log(
                f"single-item requests, {facts['connections']} connections: {facts['saturatedRps']:.1f} req/s, "
                f"mean batch {facts['meanBatch']:.2f}: {facts['requestOverheadMs']:.4f} ms per request "
                "beyond the points' time per item"
            )

        results = run_triton_engine(
            model,
            device=args.device,
            batch_sizes=args.batch_sizes,
            concurrency=args.concurrency,
            plan=plan,
            serving=serving,
            protocol=args.protocol,
            tritonserver=args.tritonserver,
            start_timeout_s=start_timeout,
            may_extend=may_extend,
            on_point=on_point,
            on_ready=on_ready,
            outputs=outputs,
            search=drive,
            overhead_seconds=overhead_s,
            on_overhead=on_overhead,
            workdir=Path(workdir) if workdir else None,
            time_left=lambda: dog.remaining() - FIXED_OVERHEAD_S,
        )
        if overhead:
            settings["requestOverhead"] = dict(overhead)
    return {
        "v": 1,
        "ok": True,
        "engine": args.engine,
        "model": {
            "name": model.name,
            "digest": model.digest,
            "format": model.format,
            "inputs": [s.to_json() for s in model.inputs],
        },
        "device": describe_device(torch, args.device, threads, node=args.node_name),
        "workerVersion": __version__,
        "measuredAt": _now_rfc3339(),
        "startedAt": started_at,
        "elapsedSeconds": round(time.monotonic() - dog.started, 3),
        "settings": settings,
        "points": [point_document(b, m) for b, m in results],
        "search": args.search,
        # {reason: [[batch size, concurrency], ...]}: the grid points not measured, and why.
        "skipped": outcomes[0].skipped_by_reason() if outcomes else {},
        **({"requestOverheadMs": overhead["requestOverheadMs"]} if "requestOverheadMs" in overhead else {}),
    }


# ---------------------------------------------------------------------------------------------
# serve


SERVE_PREFIX = "hp-serve-"
PID_FILE = "hp-serve.pid"


def serve_workdir(base: Path | None = None) -> Path:
    """A new folder for ``serve``'s repository under ``base`` ($TMPDIR), holding the pid of the
    process that will run tritonserver (this one: execve keeps the pid).

    Older ``hp-serve-*`` folders whose process is gone are removed first (and one that names
    this very pid: a restarted container starts again as pid 1): a crash-looping serving pod's
    /tmp (an emptyDir that survives restarts) keeps one repository, not one per start, while
    a live server's folder beside it (several replicas sharing a /tmp) is left alone."""
    base = Path(tempfile.gettempdir() if base is None else base)
    for old in base.glob(SERVE_PREFIX + "*"):
        try:
            pid = int((old / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours, or still being written: left alone
        if pid == os.getpid() or not _process_alive(pid):
            shutil.rmtree(old, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix=SERVE_PREFIX, dir=base))
    (workdir / PID_FILE).write_text(f"{os.getpid()}\n")
    return workdir


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(
    args: argparse.Namespace,
    dog: watchdog.Watchdog,
    sink: ResultSink,
    downloads: Path | None = None,
    temp_dirs: list[str] | None = None,
) -> int:
    """Write the repository and exec tritonserver (it becomes this process: signals reach it).
    A folder made here is removed if anything fails before the exec (added to ``temp_dirs``)."""
    from .engine_triton import build_repository
    from .models import load_model
    from .spec import parse_input_specs
    from .triton_server import (
        Ports,
        locate_tritonserver,
        prepare_backends,
        server_command,
        server_env,
    )

    inputs = parse_input_specs(args.input)
    serving = _serving_config(args, default_max_batch=8, default_kind="cpu")
    import torch

    if serving.instance_kind == "gpu":
        from .device import require_cuda

        require_cuda(torch)
    install = locate_tritonserver(args.tritonserver)
    model = load_model(
        args.model,
        digest=args.digest,
        format=args.format,
        inputs=inputs,
        deadline=dog.deadline + 1,
        cache_dir=downloads,
    )
    made: list[str] = temp_dirs if temp_dirs is not None else []
    if args.repository_dir:
        workdir = Path(args.repository_dir)
    else:
        workdir = serve_workdir()
        made.append(str(workdir))
    repo = build_repository(model, workdir / "repository", serving, model_name=args.model_name)
    backends = prepare_backends(install, workdir)
    cmd = server_command(
        install,
        repository=repo,
        backends=backends,
        ports=Ports(args.http_port, args.grpc_port, args.metrics_port),
        address=args.address,
    )
    env = server_env(install)
    _log(f"serving {model.name} ({model.digest}) as '{args.model_name}': {' '.join(cmd)}")
    if args.dry_run:
        doc = {
            "v": 1,
            "ok": True,
            "command": cmd,
            "repository": str(repo),
            "digest": model.digest,
            "ldLibraryPath": env.get("LD_LIBRARY_PATH", ""),
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        if str(workdir) in made:
            made.remove(str(workdir))  # kept for the caller to look at (the next start removes it)
        return 0
    dog.cancel()
    if downloads is not None:  # the repository holds the model now; nothing cleans up after execve
        shutil.rmtree(downloads, ignore_errors=True)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(cmd[0], cmd, env)  # the folder stays: the server (same pid) uses it
    except OSError as exc:
        raise WorkerError(Reason.SERVER_START_FAILED, f"cannot exec {cmd[0]}: {exc}") from exc
    return 0  # not reached
