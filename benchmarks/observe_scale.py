"""The scaling loop's own cost for many deployments at a steady load, with a synthetic metrics
source: how much of one core the operator spends observing and re-planning, and how many status
writes a steady load causes.

N InferenceDeployments (default 1,000; the seed example's model, pools and profiles, mode Apply,
scaling mode Operator with the default 15 s interval) each get a steady offered load with a few
percent of noise from a fake Prometheus (the same four fleet queries, answered from memory).
Each round is one interval: the observation loop's tick, then a plan of every deployment (as the
reconcile threads would, minus the API calls), feeding each plan's status into the next round.
Printed per round: CPU seconds (process time), the share of one core over the interval, and the
status writes the round would make. Goal: under 10% of one core with a steady load.

    python benchmarks/observe_scale.py [--count 1000] [--rounds 8] [--interval 15]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--interval", type=float, default=15.0)
    p.add_argument("--noise", type=float, default=0.03, help="relative noise of each observed rate")
    args = p.parse_args()

    from hybridplace.api import load_objects, parse_object
    from hybridplace.builders import names
    from hybridplace.config import Settings
    from hybridplace.controller.fingerprint import deployment_fingerprint
    from hybridplace.controller.observer import ObservationLoop, ObservationStore
    from hybridplace.controller.plan import ChildState, plan_inference_deployment

    loaded = [x.obj for x in load_objects([REPO / "examples" / "hardwarepools.yaml", REPO / "examples" / "seed"])]
    pools = {o.name: o for o in loaded if o.kind == "HardwarePool"}
    profiles = {o.spec.pool: o for o in loaded if o.kind == "ModelProfile"}
    seed = next(o for o in loaded if o.kind == "InferenceDeployment").to_dict()
    rng = random.Random(1)
    bodies, rates = {}, {}
    for i in range(args.count):
        body = copy.deepcopy(seed)
        body["metadata"].update(name=f"svc-{i:05d}", namespace="bench", uid=f"uid-{i}", generation=1)
        body["spec"]["placement"]["mode"] = "Apply"
        body["spec"]["scaling"] = {"mode": "Operator", "intervalSeconds": int(args.interval),
                                   "scaleDownDelaySeconds": 300}
        key = ("bench", body["metadata"]["name"])
        bodies[key] = body
        rates[key] = rng.uniform(5, 400)

    def query_all(window):
        figures = {}
        for key, rate in rates.items():
            r = rate * (1 + rng.uniform(-args.noise, args.noise))
            pool = "cpu-standard" if rate < 68 else "gpu-t4"
            figures[key] = {"rate": {pool: r}, "latency": {(pool, "0.95"): 400.0 + rng.uniform(-10, 10)},
                            "queue": {pool: 5.0}, "requests": {pool: r * 100}}
        return figures, None

    clock = {"t": 1_800_000_000.0}
    store = ObservationStore(observing=True, clock=lambda: clock["t"])
    loop = ObservationLoop(query_all, store, lambda: bodies, lambda key: None)
    settings = Settings()
    children: dict = {}
    rows = []
    for rnd in range(args.rounds):
        start = time.process_time()
        loop.run_once(clock["t"])
        writes = 0
        for key, body in bodies.items():
            infd = parse_object(body)
            plan = plan_inference_deployment(
                infd, pools=pools, profiles=profiles, jobs={}, children=children.get(key, {}), service_names=set(),
                settings=settings, now=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock["t"])),
                fingerprint=deployment_fingerprint, observed=store.get(key))
            if plan.status != (body.get("status") or {}):
                writes += 1
                body["status"] = plan.status
            if plan.deployments:
                children[key] = {d["metadata"]["labels"][names.LABEL_POOL]: ChildState(
                    d["metadata"]["name"], d["metadata"]["labels"][names.LABEL_POOL], deployment_fingerprint(d),
                    d["spec"]["replicas"], d["spec"]["replicas"], True) for d in plan.deployments}
        cpu = time.process_time() - start
        rows.append((rnd, cpu, cpu / args.interval, writes))
        clock["t"] += args.interval
    print(f"{'round':>5} {'cpu s':>7} {'core share':>10} {'status writes':>13}")
    for rnd, cpu, share, writes in rows:
        print(f"{rnd:>5} {cpu:>7.2f} {share:>10.1%} {writes:>13}")
    steady = rows[2:] or rows
    median_share = statistics.median(r[2] for r in steady)
    print(f"# {args.count} deployments, interval {args.interval:g} s: steady rounds (from the third) use "
          f"{median_share:.1%} of one core (median), {statistics.median(r[3] for r in steady):.0f} status writes "
          f"per round; goal < 10%. {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {platform.node()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0 if median_share < 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
