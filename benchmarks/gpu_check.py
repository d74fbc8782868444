"""The GPU check: the worker on CUDA, compared with perf_analyzer, written out as ModelProfiles.

Run it through ``benchmarks/gpu_check.sh OUTDIR`` (``make gpu-check``) on a machine with an NVIDIA
GPU and the project's Python environment. In a fixed time budget (default 420 s) it:

1. records the GPU, its driver and the software versions (nvidia-smi, NVML, torch);
2. runs ``hybridplace-worker bench --device cuda`` with the torch engine on every built-in model;
3. runs the triton engine on a KIND_GPU instance (tritonserver from the nvidia-pytriton wheel, or
   ``HP_TRITONSERVER``) on the built-in models, as far as the budget goes;
4. compares our triton engine with NVIDIA perf_analyzer on the same GPU-backed server
   (``benchmarks/worker_vs_perf_analyzer.py --device cuda``), when perf_analyzer is available;
5. converts each result into a ModelProfile exactly as the operator would record it from a
   benchmark pod (``hybridplace.builders.profiles.build_model_profile``), provenance ``measured``,
   with the device name and driver, and writes a short Markdown report.

Without a GPU it prints one line and exits 0 (the CPU path is tested). A step that fails is
reported with its error and the rest still run. At most a handful of files are written:
``report.md``, ``modelprofiles-torch.yaml``, ``modelprofiles-triton.yaml``, ``results.json``,
``gpu_check.log``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILTINS = ("mlp", "resnet", "transformer")
TORCH_BATCHES = "1,4,16,64,256"
TRITON_BATCHES = "1,8,64"
CONCURRENCY = "1,4"


def gpu_absent_reason() -> str | None:
    """Why there is no usable CUDA GPU here, or None when torch sees one."""
    try:
        import torch
    except ImportError as err:
        return f"torch is not importable ({err})"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} (built for CUDA {torch.version.cuda or 'none'}) sees no CUDA device"
    return None


def nvidia_smi_facts() -> dict:
    """GPU facts from nvidia-smi, or {} when it is missing or fails."""
    fields = "name,driver_version,memory.total,power.limit,clocks.max.sm,pci.bus_id"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return {}
    try:
        out = subprocess.run(
            [smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    first = out.strip().splitlines()[0] if out.strip() else ""
    values = [v.strip() for v in first.split(",")]
    return dict(zip(fields.split(","), values, strict=False))


def pool_slug(gpu_name: str) -> str:
    """A pool name for a GPU product: ``NVIDIA H200`` -> ``gpu-h200``."""
    name = re.sub(r"^nvidia\s+", "", gpu_name.strip(), flags=re.I).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", name).strip("-")[:40].strip("-")
    return f"gpu-{slug or 'unknown'}"


def run_logged(cmd: list[str], log, timeout: float, env: dict | None = None) -> tuple[int, float]:
    """Run ``cmd``, its output appended to ``log``; (exit code, seconds). 124 on timeout."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    start = time.monotonic()
    try:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=max(timeout, 1), env=env).returncode
    except subprocess.TimeoutExpired:
        rc = 124
    return rc, time.monotonic() - start


def bench_command(model: str, engine: str, work: Path, deadline_s: int) -> tuple[list[str], Path, Path]:
    tag = f"{engine}-{model}"
    full, compact = work / f"{tag}.json", work / f"{tag}.termination.json"
    cmd = [
        sys.executable,
        "-m",
        "hybridplace_worker",
        "bench",
        "--model",
        f"builtin:{model}",
        "--device",
        "cuda",
        "--engine",
        engine,
        "--batch-sizes",
        TORCH_BATCHES if engine == "torch" else TRITON_BATCHES,
        "--concurrency",
        CONCURRENCY,
        "--duration-seconds",
        "1.5",
        "--warmup-seconds",
        "0.5",
        "--max-windows",
        "6",
        "--deadline-seconds",
        str(deadline_s),
        "--output",
        str(full),
        "--termination-log",
        str(compact),
    ]
    if engine == "triton":
        cmd += ["--instance-kind", "gpu", "--server-start-timeout-seconds", str(min(120, deadline_s))]
    return cmd, full, compact


def profile_for(compact: dict, pool: str, source: str) -> dict | str:
    """The ModelProfile the operator would record from this termination message, or why not."""
    try:
        from hybridplace.builders.profiles import BenchmarkFailure, build_model_profile
    except ImportError as err:
        return f"the operator package is not importable here ({err})"
    profile = build_model_profile(compact, namespace="default", pool=pool, node=None, source=source)
    if isinstance(profile, BenchmarkFailure):
        return f"{profile.reason}: {profile.message}"
    profile["metadata"].pop("namespace", None)  # imported with kubectl apply -n <yours>
    return profile


def points_table(full: dict) -> list[str]:
    rows = [
        "| batch | concurrency | p50 ms | p95 ms | p99 ms | inferences/s | stable |",
        "|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for p in sorted(full.get("points", []), key=lambda p: (p["batchSize"], p["concurrency"])):
        rows.append(
            f"| {p['batchSize']} | {p['concurrency']} | {p['p50Ms']:.3f} | {p['p95Ms']:.3f} | {p['p99Ms']:.3f} "
            f"| {p['throughputIps']:.0f} | {'yes' if p.get('stable') else 'no'} |"
        )
    return rows


def comparison_table(doc: dict) -> list[str]:
    rows = [
        "| batch | concurrency | p50 ours ms | p50 perf_analyzer ms | p50 ratio "
        "| inf/s ours | inf/s perf_analyzer | inf/s ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc.get("rows", []):
        rows.append(
            f"| {r['b']} | {r['c']} | {r['oursP50Ms']:.3f} | {r['paP50Ms']:.3f} | {r['p50Ratio']:.3f} "
            f"| {r['oursIps']:.0f} | {r['paIps']:.0f} | {r['ipsRatio']:.3f} |"
        )
    return rows


def yaml_dump_all(docs: list[dict]) -> str:
    import yaml

    return yaml.safe_dump_all(docs, sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="output folder (created)")
    p.add_argument("--perf-analyzer-dir", type=Path, default=None, help="from benchmarks/fetch-perf-analyzer.sh")
    p.add_argument("--pool", default=None, help="pool name of the profiles (default: gpu-<product>)")
    p.add_argument("--budget-seconds", type=float, default=420.0, help="total time budget (the goal is < 8 min)")
    p.add_argument("--models", default=",".join(BUILTINS), help="built-in models, comma-separated")
    args = p.parse_args(argv)

    absent = gpu_absent_reason()
    if absent is not None:
        print(f"gpu-check: no NVIDIA GPU here ({absent}); nothing measured")
        return 0

    import torch

    t0 = time.monotonic()
    left = lambda: args.budget_seconds - (time.monotonic() - t0)  # noqa: E731
    args.out.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    smi = nvidia_smi_facts()
    gpu_name = smi.get("name") or torch.cuda.get_device_name(0)
    pool = args.pool or pool_slug(gpu_name)
    facts = {
        "startedAt": started,
        "gpu": gpu_name,
        "driver": smi.get("driver_version"),
        "nvidiaSmi": smi,
        "torch": torch.__version__,
        "torchCuda": torch.version.cuda,
        "python": platform.python_version(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "pool": pool,
    }
    print(
        f"gpu-check: {gpu_name}, driver {facts['driver']}, torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}); pool {pool}",
        flush=True,
    )
    source = (
        f"benchmarks/gpu_check.sh {started} on {gpu_name} (driver {facts['driver']}, "
        f"torch {torch.__version__}, {platform.node()})"
    )
    steps: list[dict] = []
    results: dict[str, dict] = {}
    profiles: dict[str, list[dict]] = {"torch": [], "triton": []}
    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory(prefix="hp-gpu-check-") as tmp, open(args.out / "gpu_check.log", "w") as log:
        work = Path(tmp)
        for engine in ("torch", "triton"):
            for model in models:
                name = f"{engine}-{model}"
                # Each step gets at most what is left, keeping 90 s for the comparison.
                deadline = int(min(150 if engine == "torch" else 180, left() - (90 if engine == "torch" else 60)))
                if deadline < 30:
                    steps.append({"step": name, "status": "skipped", "why": "time budget"})
                    continue
                cmd, full_path, compact_path = bench_command(model, engine, work, deadline)
                rc, secs = run_logged(cmd, log, deadline + 15)
                step = {"step": name, "rc": rc, "seconds": round(secs, 1)}
                compact = json.loads(compact_path.read_text()) if compact_path.exists() else None
                if rc == 0 and full_path.exists() and compact and compact.get("ok"):
                    results[name] = json.loads(full_path.read_text())
                    prof = profile_for(compact, pool, source)
                    if isinstance(prof, dict):
                        profiles[engine].append(prof)
                        step["status"] = "ok"
                    else:
                        step.update(status="measured, no profile", why=prof)
                else:
                    why = (compact or {}).get("message") or f"exit code {rc}; see gpu_check.log"
                    step.update(status="failed", reason=(compact or {}).get("reason"), why=str(why)[:600])
                steps.append(step)
                print(f"  {name}: {step['status']} in {secs:.0f} s {step.get('why', '')[:200]}", flush=True)

        comparison = None
        pa_dir = args.perf_analyzer_dir
        if pa_dir is None or not (pa_dir / "perf_analyzer").exists():
            steps.append({"step": "perf_analyzer", "status": "skipped", "why": f"no perf_analyzer in {pa_dir}"})
        elif left() < 45:
            steps.append({"step": "perf_analyzer", "status": "skipped", "why": "time budget"})
        else:
            pa_json = work / "perf_analyzer.json"
            cmd = [
                sys.executable,
                str(HERE / "worker_vs_perf_analyzer.py"),
                "--perf-analyzer-dir",
                str(pa_dir),
                "--device",
                "cuda",
                "--model",
                "builtin:resnet",
                "--batch-sizes",
                "1,8",
                "--concurrency",
                "1,2",
                "--rounds",
                "4",
                "--window-seconds",
                "0.5",
                "--json-out",
                str(pa_json),
            ]
            rc, secs = run_logged(cmd, log, left() - 5)
            step = {"step": "perf_analyzer", "rc": rc, "seconds": round(secs, 1)}
            if pa_json.exists():
                comparison = json.loads(pa_json.read_text())
                step.update(status="ok", worstDeviation=round(comparison["worstDeviation"], 4))
            else:
                step.update(status="failed", why=f"exit code {rc}; see gpu_check.log")
            steps.append(step)
            print(f"  perf_analyzer: {step['status']} in {secs:.0f} s", flush=True)

    facts["seconds"] = round(time.monotonic() - t0, 1)
    (args.out / "results.json").write_text(
        json.dumps({"facts": facts, "steps": steps, "results": results, "perfAnalyzer": comparison}, indent=1)
    )
    for engine, docs in profiles.items():
        if docs:
            header = (
                f"# Measured by {source}.\n# Import: kubectl apply -n <namespace> -f this file (pool name: {pool}).\n"
            )
            (args.out / f"modelprofiles-{engine}.yaml").write_text(header + yaml_dump_all(docs))
    write_report(args.out / "report.md", facts, steps, results, comparison)
    ok = sum(1 for s in steps if s.get("status") == "ok")
    print(f"gpu-check: {ok}/{len(steps)} steps ok in {facts['seconds']} s; report in {args.out / 'report.md'}")
    return 0 if ok else 1


def write_report(path: Path, facts: dict, steps: list[dict], results: dict, comparison: dict | None) -> None:
    lines = [
        f"# GPU check: {facts['gpu']}",
        "",
        f"{facts['startedAt']}, host {facts['host']} ({facts['cpus']} CPUs), driver {facts['driver']}, "
        f"torch {facts['torch']} (CUDA {facts['torchCuda']}), Python {facts['python']}; "
        f"{facts['seconds']} s in all. Command: `benchmarks/gpu_check.sh OUTDIR`.",
        "",
        "## Steps",
        "",
        "| step | status | seconds | note |",
        "|---|---|---:|---|",
    ]
    for s in steps:
        note = s.get("why") or (f"worst deviation {s['worstDeviation']:.1%}" if "worstDeviation" in s else "")
        lines.append(f"| {s['step']} | {s['status']} | {s.get('seconds', '')} | {str(note).replace('|', '/')[:300]} |")
    for name, full in results.items():
        lines += ["", f"## {name} (`hybridplace-worker bench --engine {name.split('-')[0]} --device cuda`)", ""]
        lines += points_table(full)
    if comparison:
        lines += [
            "",
            "## Our triton engine against perf_analyzer (resnet, KIND_GPU, medians of paired rounds)",
            "",
            *comparison_table(comparison),
            "",
            f"Worst deviation {comparison['worstDeviation']:.1%}; {comparison.get('idle', 'idle CPUs: not recorded')}.",
        ]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
