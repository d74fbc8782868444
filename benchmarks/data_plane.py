"""The local data plane measured: the load generator's achieved rate against the asked rate, and
the client's p95 against the p95 Prometheus derives from Triton's summaries.

On a cluster of its own (HP_BENCH_CLUSTER, default hybridplace-bench), with the real operator, for each
asked rate (default 50 and 200 requests/s) it applies a fresh InferenceDeployment of
builtin:delay (20 ms + 1 ms per item, sleeping) sized by the operator for that rate, waits for its
serving pods, runs `hybridplace loadgen` for --seconds (default 20), waits two scrape intervals
and reads Prometheus (the observer's own queries). A fresh deployment per rate keeps each
summary's sliding window to one run. Goals: achieved within 5% of asked; client p95 within 20% of
Prometheus' (the client's includes HTTP and its own event loop; Triton's is queue + compute).

    python benchmarks/data_plane.py [--rates 50,200] [--seconds 20] [--keep-cluster]
(`make bench-data-plane`.) Prints a table and exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCALCLUSTER = REPO / "cluster" / "localcluster.py"


def kubectl(state: dict, *args: str, stdin: str | None = None) -> str:
    return subprocess.run([state["bin"]["kubectl"], "--kubeconfig", state["kubeconfig"], *args], input=stdin,
                          capture_output=True, text=True, check=True, timeout=120).stdout


def wait(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")


def ready(state: dict, name: str) -> bool:
    obj = json.loads(kubectl(state, "get", "infd", name, "-o", "json"))
    conds = {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="50,200", help="asked rates, requests/s, comma-separated")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--keep-cluster", action="store_true", help="leave the cluster running")
    args = p.parse_args()
    name = os.environ.get("HP_BENCH_CLUSTER", "hybridplace-bench")
    up = subprocess.run([sys.executable, str(LOCALCLUSTER), "up", "--name", name, "--json"], check=True,
                        capture_output=True, text=True, timeout=3600)
    info = json.loads(up.stdout)
    state = json.loads((Path(info["dir"]) / "state.json").read_text())
    from hybridplace.controller.observe import PrometheusObserver

    observer = PrometheusObserver(state["prometheus_url"])
    kubectl(state, "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl(state, "wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl(state, "apply", "-f", str(REPO / "examples" / "hardwarepools.yaml"))
    log = open(Path(info["dir"]) / "logs" / "bench-operator.log", "ab")
    operator = subprocess.Popen([sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", info["kubeconfig"],
                                 "--liveness", "", "--metrics-port", "0"], stdout=log, stderr=subprocess.STDOUT)
    rows = []
    load_before = os.getloadavg()[0]
    try:
        for rate in [float(r) for r in args.rates.split(",") if r]:
            infd = f"bench-delay-{rate:g}"
            body = {
                "apiVersion": "hybridplace.io/v1alpha1", "kind": "InferenceDeployment",
                "metadata": {"name": infd, "namespace": "default"},
                "spec": {"model": {"builtin": "delay"}, "slo": {"percentile": 95, "latencyMs": 200},
                         "load": {"targetRps": rate, "minReplicas": 1, "maxReplicas": 8},
                         "placement": {"pools": ["cpu-standard"]},
                         "benchmark": {"batchSizes": [1, 2, 4, 8], "durationSeconds": 0.5}},
            }
            kubectl(state, "apply", "-f", "-", stdin=json.dumps(body))
            wait(f"{infd} Ready", lambda infd=infd: ready(state, infd), 300)
            time.sleep(6)  # a scrape of the fresh pods, so the counter's start is known
            before = observer.observe("default", infd).requests or 0.0
            out = subprocess.run([sys.executable, "-m", "hybridplace.cli", "loadgen", infd, "-n", "default",
                                  "--rps", f"{rate:g}", "--seconds", f"{args.seconds:g}", "-o", "json",
                                  "--kubeconfig", info["kubeconfig"]], capture_output=True, text=True, check=True)
            client = json.loads(out.stdout)
            time.sleep(11)  # two scrape intervals
            seen = observer.observe("default", infd)
            replicas = json.loads(kubectl(state, "get", "infd", infd, "-o", "json"))["status"]["decision"]["placements"]
            rows.append({
                "asked": rate, "achieved": client["achieved_rps"], "sent": client["sent"], "ok": client["ok"],
                "errors": client["errors"], "replicas": sum(p["replicas"] for p in replicas),
                "clientP95": client["p95_ms"], "promP95": seen.latency_ms,
                "promCounted": (seen.requests or 0.0) - before,
            })
            kubectl(state, "delete", "infd", infd, "--wait=false")
    finally:
        operator.terminate()
        operator.wait(timeout=30)
        if not args.keep_cluster:
            subprocess.run([sys.executable, str(LOCALCLUSTER), "down", "--name", name], check=False,
                           capture_output=True, timeout=300)
    ok = True
    print(f"{'asked':>6} {'achieved':>9} {'ratio':>6} {'replicas':>8} {'ok/sent':>11} {'counted':>8} "
          f"{'client p95':>10} {'Prom p95':>9} {'ratio':>6}")
    for r in rows:
        rate_ratio = r["achieved"] / r["asked"]
        p95_ratio = r["clientP95"] / r["promP95"] if r["promP95"] else float("nan")
        ok &= abs(rate_ratio - 1) <= 0.05 and abs(p95_ratio - 1) <= 0.20
        print(f"{r['asked']:>6g} {r['achieved']:>9.1f} {rate_ratio:>6.3f} {r['replicas']:>8} "
              f"{r['ok']:>5}/{r['sent']:<5} {r['promCounted']:>8.0f} {r['clientP95']:>8.1f} ms "
              f"{(r['promP95'] or float('nan')):>6.1f} ms {p95_ratio:>6.3f}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {platform.node()}, {os.cpu_count()} CPUs, "
          f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after; goals: rate within 5%, "
          f"p95 within 20%: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
