#!/usr/bin/env python3
"""`make demo`: the whole job on the local cluster, in one command.

Brings the local cluster up (or reuses it), applies the CRDs and the example HardwarePools,
starts the operator in the background, applies an InferenceDeployment of a built-in model, shows
the benchmarks' progress, and prints the decision. Then it sends real requests to the serving
pods (`hybridplace loadgen`) and prints the achieved rate and p95 twice: as the client measured
them, and as Prometheus saw them. The operator keeps running so you can explore; `make demo-stop`
stops it and `make cluster-down` stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "cluster"))
from localcluster import CACHE, alive, proc_start_time  # noqa: E402 - the cluster's own tooling
from podrunner import MARK_ENV  # noqa: E402

CLUSTER = os.environ.get("HP_CLUSTER", "hybridplace")
STATE = CACHE / "clusters" / CLUSTER
PID_FILE = STATE / "operator.pid"
LOG_FILE = STATE / "logs" / "operator.log"


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def kubectl(*args: str, check: bool = True) -> str:
    result = subprocess.run([str(REPO / "cluster" / "kubectl"), *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        sys.exit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def operator_running() -> int | None:
    """The demo operator's PID, if that very process still runs: the file keeps its start time
    too, so a PID reused after a reboot is never taken for it."""
    try:
        entry = json.loads(PID_FILE.read_text())
    except (OSError, ValueError):
        return None
    return entry["pid"] if isinstance(entry, dict) and alive(entry) else None


def start_operator() -> int:
    pid = operator_running()
    if pid:
        say(f"operator already running (pid {pid}); log: {LOG_FILE}")
        return pid
    LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig = STATE / "kubeconfig"
    # The cluster's marker variable lets `make cluster-down` find and stop it too.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), MARK_ENV: str(STATE)}
    # The cluster's Prometheus: the operator observes the serving pods and scales from it.
    prometheus = json.loads((STATE / "state.json").read_text()).get("prometheus_url")
    if prometheus:
        env["HP_PROMETHEUS_URL"] = prometheus
    # Its own metrics on a free port, which the cluster's Prometheus scrapes (job
    # hybridplace-operator: a file_sd target file, removed by demo-stop).
    metrics_port = free_port()
    with LOG_FILE.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", str(kubeconfig),
             "--liveness", "", "--metrics-port", str(metrics_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    PID_FILE.write_text(json.dumps({"pid": proc.pid, "start": proc_start_time(proc.pid)}))
    targets = STATE / "operator-targets"
    if targets.is_dir():
        (targets / "demo.json").write_text(json.dumps([{"targets": [f"127.0.0.1:{metrics_port}"],
                                                        "labels": {"operator": "demo"}}]))
    say(f"operator started (pid {proc.pid}, Prometheus {prometheus or 'none'}, metrics "
        f"http://127.0.0.1:{metrics_port}/metrics); log: {LOG_FILE}")
    return proc.pid


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_operator() -> None:
    pid = operator_running()
    if pid is None:
        say("no demo operator is running")
        return
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if operator_running() is None:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
    PID_FILE.unlink(missing_ok=True)
    (STATE / "operator-targets" / "demo.json").unlink(missing_ok=True)
    say(f"operator (pid {pid}) stopped")


def conditions(name: str, namespace: str) -> dict[str, dict]:
    obj = json.loads(kubectl("get", "infd", name, "-n", namespace, "-o", "json"))
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def run_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    subprocess.run([sys.executable, str(REPO / "cluster" / "localcluster.py"), "up", "--name", CLUSTER], check=True)
    say("applying the CRDs and the example HardwarePools (cpu-standard, gpu-t4)")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl("apply", "-f", str(REPO / "examples" / "hardwarepools.yaml"))
    start_operator()
    example = REPO / "examples" / "inferencedeployment.yaml"
    say(f"applying {example.relative_to(REPO)} (built-in MLP, p95 SLO, 200 requests/s)")
    kubectl("apply", "-n", args.namespace, "-f", str(example))
    name = "demo-mlp"
    last = ""
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        conds = conditions(name, args.namespace)
        profiled, placed = conds.get("Profiled"), conds.get("Placed")
        line = " | ".join(f"{t}={c['status']} ({c['reason']})" for t, c in conds.items())
        if line != last:
            say(line or "waiting for the operator")
            if profiled and profiled["status"] != "True":
                say(f"  {profiled['message']}")
            last = line
        if placed and (placed["status"] == "True" or placed["reason"] == "Infeasible") and \
                conds.get("Ready", {}).get("reason") != "ReplicasPending":
            break
        time.sleep(2)
    else:
        say(f"not decided within {args.timeout} s; see `kubectl describe infd {name}` and {LOG_FILE}")
        return 1
    print()
    subprocess.run([sys.executable, "-m", "hybridplace.cli", "explain", name, "-n", args.namespace,
                    "--kubeconfig", str(STATE / "kubeconfig")], check=False)
    print()
    print(kubectl("get", "infd,hwpool,mprof", "-n", args.namespace))
    print(kubectl("get", "jobs,deployments,pods", "-n", args.namespace, "-o", "wide"))
    if args.load_seconds > 0 and not send_traffic(name, args):
        return 1
    say(f"done in {time.monotonic() - started:.0f} s. Next:")
    print(f"  cluster/kubectl describe infd {name}        # conditions, decision, alternatives, events")
    print(f"  cluster/kubectl get events --field-selector involvedObject.name={name}")
    print(f"  {Path(sys.executable).parent}/hybridplace explain {name} --kubeconfig {STATE / 'kubeconfig'}"
          "   # the decision, from its status")
    print("  make demo-stop                              # stop the operator; make cluster-down stops all")
    return 0


def send_traffic(name: str, args: argparse.Namespace) -> bool:
    """Real requests to the placed model, then the same run as Prometheus saw it."""
    from hybridplace.controller.observe import PrometheusObserver

    deadline = time.monotonic() + 180
    while conditions(name, args.namespace).get("Ready", {}).get("status") != "True":
        if time.monotonic() > deadline:
            say(f"the serving pods are not Ready after 180 s; see `kubectl describe pods -n {args.namespace}`")
            return False
        time.sleep(2)
    spec = json.loads(kubectl("get", "infd", name, "-n", args.namespace, "-o", "json"))["spec"]
    rps = args.load_rps or float(spec["load"]["targetRps"])
    state = json.loads((STATE / "state.json").read_text())
    observer = PrometheusObserver(state["prometheus_url"]) if state.get("prometheus_url") else None
    before = observer.observe(args.namespace, name).requests or 0.0 if observer else 0.0
    say(f"sending {rps:g} requests/s for {args.load_seconds:g} s to the serving pods (hybridplace loadgen)")
    out = subprocess.run([sys.executable, "-m", "hybridplace.cli", "loadgen", name, "-n", args.namespace,
                          "--rps", f"{rps:g}", "--seconds", f"{args.load_seconds:g}", "-o", "json",
                          "--kubeconfig", str(STATE / "kubeconfig")], capture_output=True, text=True)
    if out.returncode != 0:
        say(f"loadgen failed: {out.stderr.strip()}")
        return False
    client = json.loads(out.stdout)
    print(f"  client:     {client['achieved_rps']:.1f} requests/s achieved ({client['ok']} ok, "
          f"{client['errors']} errors), p95 {client['p95_ms']:.1f} ms")
    if observer is None:
        print("  Prometheus: not running in this cluster")
        return True
    time.sleep(11)  # two scrape intervals: the last requests are in Prometheus
    seen = observer.observe(args.namespace, name)
    if seen.requests is None:
        print(f"  Prometheus: no data ({seen.error})")
        return True
    counted = seen.requests - before
    p95 = f"{seen.latency_ms:.1f} ms" if seen.latency_ms is not None else "unknown"
    print(f"  Prometheus: {counted:.0f} requests counted ({counted / args.load_seconds:.1f} requests/s over "
          f"the run), p95 {p95} (server side, Triton's summary)")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=["run", "stop"])
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--timeout", type=float, default=280, help="seconds to wait for the decision")
    parser.add_argument("--load-seconds", type=float, default=10,
                        help="seconds of real traffic at the end (0: none)")
    parser.add_argument("--load-rps", type=float, default=0,
                        help="requests/s of that traffic (default: the InferenceDeployment's targetRps)")
    args = parser.parse_args()
    if args.command == "stop":
        stop_operator()
        return 0
    return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
