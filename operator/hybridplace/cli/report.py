"""`hybridplace report`: pictures of one model's CPU-versus-GPU trade-off, offline like
`recommend` (from YAML files, or read from the cluster with --from-cluster).

It writes into --out: `latency-by-batch.png` and `throughput-by-batch.png` (what each pool
measured, per batch size and concurrency), `cost-vs-load.png` (USD per hour and USD per million
inferences against load, for each pool alone and for the choice, with the crossovers where the
choice changes pools), `report.md` (the decision, the crossovers, a table of loads) and
`report.json` (the very data the figures draw). The chosen point is marked in every figure.

Exit codes: 0 written, 2 bad input (one line naming the file, object and field), 1 an
unexpected error.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from ..api import FileProblem, InferenceDeployment, Loaded, load_objects
from ..api.files import MAX_LINE, cut
from ..controller.plan import model_digest
from ..placement import Profile, solve
from ..placement.from_api import pool_from, profile_from
from ..placement.sweep import crossovers, log_grid, sweep
from .errors import UsageError, unreachable
from .recommend import GATEWAY_HELP, _Found, _index, _inputs, _namespace, _positive, routed_request

MAX_SWEPT_REPLICAS = 10_000  # spec.load.maxReplicas' largest value (the CRD's)

FIGURES = ("latency-by-batch.png", "throughput-by-batch.png", "cost-vs-load.png")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report", help="write pictures and a summary of one model's CPU/GPU trade-off",
        description="For one InferenceDeployment and its pools' ModelProfiles: latency and "
        "throughput by batch size per pool, USD per hour and per million inferences against load "
        "with the crossovers where the choice changes pools, the chosen point marked; PNGs, "
        "report.md and report.json in --out. Offline from -f files, or from the cluster with "
        "--from-cluster. Exit codes: 0 written, 2 bad input.",
    )
    parser.add_argument("-f", "--filename", dest="paths", action="append", default=[], metavar="PATH",
                        help="a YAML file or folder (InferenceDeployments, HardwarePools, ModelProfiles); repeat it")
    parser.add_argument("--name", default=None,
                        help="the InferenceDeployment to report on (needed when the files hold several)")
    parser.add_argument("-n", "--namespace", default=None, help="its namespace (default: any in the files; "
                        "with --from-cluster the kubeconfig context's, else default)")
    parser.add_argument("--from-cluster", action="store_true",
                        help="read the InferenceDeployment (--name), the HardwarePools and its namespace's "
                        "ModelProfiles from the cluster instead of files")
    parser.add_argument("--kubeconfig", default=None, help="with --from-cluster: kubeconfig file")
    parser.add_argument("--context", default=None, help="with --from-cluster: kubeconfig context")
    parser.add_argument("-o", "--out", type=Path, default=None, metavar="DIR",
                        help="folder to write into (default: report-NAME); created if missing")
    parser.add_argument("--min-rps", type=_positive, default=None,
                        help="lowest load drawn, requests/s (default: spec.load.targetRps / 50)")
    parser.add_argument("--max-rps", type=_positive, default=None,
                        help="highest load drawn, requests/s (default: spec.load.targetRps x 100)")
    parser.add_argument("--points", type=int, default=200,
                        help="loads scanned, log-spaced (default 200; crossovers are then bisected to "
                        "0.001 requests/s)")
    parser.add_argument("--gateway", action="store_true", help=GATEWAY_HELP)
    parser.add_argument("--keep-capacity", action="store_true",
                        help="keep the pools' and the deployment's replica caps in the sweep (by default "
                        "they are lifted, to the 10,000 replicas an InferenceDeployment may have at most, "
                        "so that each pool's cost can be read at every load; the decision at the target "
                        "load always keeps them)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.points < 2 or args.points > 5000:
        raise UsageError(f"--points {args.points}: must be between 2 and 5000")
    if args.from_cluster:
        if not args.name:
            raise UsageError("--from-cluster needs --name, the InferenceDeployment to report on")
        if args.paths:
            raise UsageError("give either -f files or --from-cluster, not both")
        loaded = _from_cluster(args)
    else:
        if not args.paths:
            raise UsageError("no input: give -f PATH (files or folders), or --from-cluster --name NAME")
        try:
            loaded = load_objects(args.paths)
        except FileProblem as err:
            raise UsageError(cut("; ".join(str(err).splitlines()), 4 * MAX_LINE)) from None
    data = build(loaded, args.name, args.namespace, min_rps=args.min_rps, max_rps=args.max_rps,
                 points=args.points, keep_capacity=args.keep_capacity, gateway=args.gateway)
    out = args.out or Path(f"report-{data['name']}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot create it: {err.strerror or err}") from None
    written = write(data, out, command=" ".join(["hybridplace", *sys.argv[1:]]) if sys.argv else "")
    for path in written:
        print(path)
    crossing = data["crossovers"]
    print("crossovers: " + (", ".join(f"{c['rps']:.1f} requests/s ({'+'.join(c['from']) or 'none'} -> "
                                      f"{'+'.join(c['to']) or 'none'})" for c in crossing[:3]) or "none in the range")
          + (f", and {len(crossing) - 3} more (report.md)" if len(crossing) > 3 else ""))
    return 0


def _from_cluster(args: argparse.Namespace) -> list[Loaded]:
    """The InferenceDeployment, every HardwarePool and the ModelProfiles of its namespace, parsed
    as the operator reads them (stored objects); the source reads `cluster: Kind namespace/name`.
    Of several ModelProfiles of one digest and pool (an import beside a measurement), the one the
    operator uses: the newest measuredAt (controller/state.py newest_profile)."""
    from ..api import GROUP, VERSION, InvalidObject, ModelProfile, parse_object
    from ..controller.state import newest_profile
    from .explain import _client, _one_line

    client, namespace = _client(args.kubeconfig, args.context, args.namespace)
    from kubernetes import client as k8s

    api = k8s.CustomObjectsApi(client)
    loaded = []
    with client:
        try:
            infd = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "inferencedeployments", args.name,
                                                    _request_timeout=(5, 30))
            pools = api.list_cluster_custom_object(GROUP, VERSION, "hardwarepools", _request_timeout=(5, 30))
            profiles = api.list_namespaced_custom_object(GROUP, VERSION, namespace, "modelprofiles",
                                                         _request_timeout=(5, 30))
        except k8s.ApiException as err:
            if err.status == 404:
                raise UsageError(f"InferenceDeployment {namespace}/{args.name} not found, or the CRDs are not "
                                 f"installed (`kubectl get infd -n {namespace}`)") from None
            raise UsageError(f"the API server at {client.configuration.host} refused: {err.status} "
                             f"{_one_line(err.reason)}") from None
        except Exception as err:  # the transport's errors; anything else is re-raised
            if not unreachable(err):
                raise
            raise UsageError(f"cannot reach the API server at {client.configuration.host}: {_one_line(err)}") from None
    for body in [infd, *pools.get("items", []), *profiles.get("items", [])]:
        kind = body.get("kind") or ("InferenceDeployment" if body is infd else "")
        meta = body.get("metadata") or {}
        source = f"cluster: {kind} {meta.get('namespace') + '/' if meta.get('namespace') else ''}{meta.get('name')}"
        body = {k: v for k, v in body.items() if k != "status" or kind == "HardwarePool"}
        try:
            # Read back from the API server: an object stored before an admission-only rule
            # was added is used, as the operator uses it.
            loaded.append(Loaded(source, parse_object(body, stored=True)))
        except InvalidObject as err:
            if body is infd or kind == "InferenceDeployment":
                raise UsageError(f"{source}: {err}") from None
            # A pool or profile the operator could not use either: left out, as the operator does.
    same: dict[tuple[str, str], dict[str, ModelProfile]] = {}  # (digest, pool): profiles by name
    for item in loaded:
        if isinstance(item.obj, ModelProfile):
            key = (item.obj.spec.model.digest, item.obj.spec.pool)
            same.setdefault(key, {})[item.obj.metadata.name or ""] = item.obj
    used = {id(newest_profile(group)) for group in same.values()}
    return [item for item in loaded if not isinstance(item.obj, ModelProfile) or id(item.obj) in used]


def _pick(infds: list[_Found], name: str | None, namespace: str | None) -> _Found:
    matching = [f for f in infds if (name is None or f.obj.metadata.name == name)
                and (namespace is None or _namespace(f.obj) == namespace)]
    if len(matching) == 1:
        return matching[0]
    known = ", ".join(f"{_namespace(f.obj)}/{f.obj.metadata.name} ({f.source})" for f in infds)
    if not matching:
        raise UsageError(f"--name {name}{f' -n {namespace}' if namespace else ''}: no such InferenceDeployment "
                         f"in the input (found: {known})")
    raise UsageError(f"the input holds {len(matching)} InferenceDeployments ({known}); choose one with --name "
                     f"(and -n)")


def build(loaded: list[Loaded], name: str | None = None, namespace: str | None = None, *,
          min_rps: float | None = None, max_rps: float | None = None, points: int = 200,
          keep_capacity: bool = False, gateway: bool = False) -> dict[str, Any]:
    """Everything the figures and the summary show, as plain JSON-able data (report.json).
    `gateway`: decide as where a Gateway routes every split (recommend's --gateway)."""
    infds, pools, profiles = _index(loaded)
    if not infds:
        raise UsageError("no InferenceDeployment in the input; add one with -f")
    found = _pick(infds, name, namespace)
    infd: InferenceDeployment = found.obj
    allowed, used = _inputs(found, pools, profiles)
    request = routed_request(infd, gateway)
    engine_pools = [pool_from(pools[n].obj) for n in allowed]
    engine_profiles = [profile_from(p.obj) for p in used.values()]
    target = request.target_rps
    low = min_rps if min_rps is not None else target / 50
    high = max_rps if max_rps is not None else target * 100
    if not low < high:
        raise UsageError(f"--min-rps {low:g} must be below --max-rps {high:g}")
    chosen = solve(request, engine_pools, engine_profiles)  # the real decision: caps kept
    swept_request, swept_pools = request, engine_pools
    if not keep_capacity:
        # Lifted to the most replicas an InferenceDeployment may have (the CRD's bound): the
        # split search's work grows with the replicas, and no decision may go past it anyway.
        swept_request = dataclasses.replace(request, max_replicas=MAX_SWEPT_REPLICAS)
        swept_pools = [dataclasses.replace(p, capacity_replicas=None) for p in engine_pools]
    measured = sorted(used)
    table = {m * 10.0 ** k for k in range(-3, 7) for m in (1, 2, 5) if low <= m * 10.0 ** k <= high}
    loads = sorted(set(log_grid(low, high, points)) | {target} | table)
    swept = sweep(swept_request, swept_pools, engine_profiles, loads, alone=measured)
    crossing = crossovers(swept_request, swept_pools, engine_profiles, swept)
    percentile = request.slo_percentile

    def number(value: float | None) -> float | None:
        return None if value is None or not math.isfinite(value) else _significant(value)

    return {
        "name": infd.metadata.name,
        "namespace": _namespace(infd),
        "source": found.source,
        "modelDigest": model_digest(infd),
        "model": infd.spec.model.builtin or infd.spec.model.uri,
        "slo": {"percentile": percentile, "latencyMs": request.slo_latency_ms},
        "targetRps": target,
        "headroom": request.headroom,
        "weightedRouting": request.weighted_routing,
        "capacityLifted": not keep_capacity,
        "pools": [{"name": n, "accelerator": pools[n].obj.spec.accelerator.type,
                   "price": _price_text(pools[n].obj), "measured": n in used,
                   "profile": _profile_text(used[n].obj) if n in used else None} for n in allowed],
        "decision": _decision(chosen),
        "profiles": {p.pool: _points(p, percentile) for p in engine_profiles},
        "loads": [_significant(x) for x in loads],
        "chosenPools": [list(x.pools) for x in swept],
        "costPerHour": {"chosen": [number(x.cost_per_hour()) for x in swept],
                        **{n: [number(x.cost_per_hour(n)) for x in swept] for n in measured}},
        "costPerMillion": {"chosen": [number(x.cost_per_million()) for x in swept],
                           **{n: [number(x.cost_per_million(n)) for x in swept] for n in measured}},
        "crossovers": [{"rps": round(c.load_rps, 3), "from": list(c.before), "to": list(c.after),
                        "costPerHourBefore": number(c.cost_before), "costPerHourAfter": number(c.cost_after)}
                       for c in crossing],
    }


def _significant(value: float) -> float:
    """Six decimals, and below 0.001 seven significant figures: a load of 1e-7 requests/s
    stays itself, not 0 (a log scale and its table took the log of it)."""
    return round(value, 6) if abs(value) >= 1e-3 or value == 0 else float(f"{value:.7g}")


def _decision(decision: Any) -> dict[str, Any]:
    """status.decision's dict, with each placement's concurrency (model instances per replica),
    which the figures mark."""
    out = {**decision.to_dict(), "message": decision.message}
    for placement, engine in zip(out["placements"], decision.placements, strict=True):
        placement["concurrency"] = engine.concurrency
    return out


def _price_text(pool: Any) -> str:
    price, power = pool.spec.price, pool.spec.power
    text = (f"{price.per_node_hour:g} USD/node-hour" if price.per_node_hour is not None
            else f"{price.per_replica_hour:g} USD/replica-hour")
    if power is not None and (power.per_node_watts is not None or power.per_replica_watts is not None):
        text += (f", {power.per_node_watts:g} W/node" if power.per_node_watts is not None
                 else f", {power.per_replica_watts:g} W/replica")
    return text


def _profile_text(profile: Any) -> str:
    spec = profile.spec
    device = spec.device.name if spec.device is not None and spec.device.name else "?"
    return (f"{spec.provenance} on {device}, {spec.engine} engine, {len(spec.points)} points"
            + (f", {spec.measured_at}" if spec.measured_at else ""))


def _points(profile: Profile, percentile: int) -> list[dict[str, Any]]:
    """Measured points: latency at the SLO's percentile (p95 for p90: the profile has
    p50/p95/p99), p50, and throughput in inferences/s."""
    out = []
    for p in sorted(profile.points, key=lambda p: (p.concurrency, p.batch_size)):
        at = {50: p.p50_ms, 99: p.p99_ms}.get(percentile, p.p95_ms)
        throughput = p.throughput_ips if p.throughput_ips else (
            p.throughput_rps * p.batch_size if p.throughput_rps else p.concurrency * p.batch_size * 1000 / p.p50_ms)
        out.append({"batchSize": p.batch_size, "concurrency": p.concurrency, "latencyMs": at, "p50Ms": p.p50_ms,
                    "throughputIps": round(throughput, 3), "stable": p.stable})
    return out


# -- writing -----------------------------------------------------------------------------------


def write(data: dict[str, Any], out: Path, command: str = "") -> list[Path]:
    """The PNGs, report.json and report.md into `out`; returns their paths."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError("hybridplace report draws with matplotlib, which is not installed: "
                         "pip install 'hybridplace[report]' (or matplotlib)") from None
    matplotlib.use("Agg")
    paths = [out / name for name in FIGURES]
    writers = ((paths[0], lambda p: _latency_figure(data, p)), (paths[1], lambda p: _throughput_figure(data, p)),
               (paths[2], lambda p: _cost_figure(data, p)),
               (out / "report.json", lambda p: p.write_text(json.dumps(data, indent=1) + "\n")),
               (out / "report.md", lambda p: p.write_text(markdown(data, command))))
    for path, writer in writers:
        try:
            writer(path)
        except OSError as err:
            raise UsageError(f"--out {out}: cannot write {path}: {err.strerror or err}") from None
    return [path for path, _ in writers]


COLOURS = ("tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
STYLES = ("-", "--", ":", "-.")
# Crossovers drawn in the figure: above the first few, a hybrid choice often flips back and forth
# as whole GPU nodes fill up (report.md lists them all).
SHOWN_CROSSOVERS = 3
LISTED_CROSSOVERS = 6


def _colour(data: dict[str, Any], pool: str) -> str:
    names = [p["name"] for p in data["pools"]]
    return COLOURS[names.index(pool) % len(COLOURS)] if pool in names else "grey"


def _chosen(data: dict[str, Any]) -> list[dict[str, Any]]:
    return data["decision"]["placements"] if data["decision"]["feasible"] else []


def _by_batch_figure(data: dict[str, Any], path: Path, key: str, ylabel: str, title: str, slo: bool) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for pool, points in sorted(data["profiles"].items()):
        levels = sorted({p["concurrency"] for p in points})
        for i, level in enumerate(levels):
            line = [p for p in points if p["concurrency"] == level]
            ax.plot([p["batchSize"] for p in line], [p[key] for p in line], marker="o", markersize=3,
                    color=_colour(data, pool), linestyle=STYLES[i % len(STYLES)],
                    label=f"{pool}, concurrency {level}")
    for placement in _chosen(data):
        line = [p for p in data["profiles"].get(placement["pool"], [])
                if p["batchSize"] == placement["batchSize"]]
        if line:
            best = next((p for p in line if p["concurrency"] == placement.get("concurrency")),
                        min(line, key=lambda p: p["concurrency"]))
            ax.plot([best["batchSize"]], [best[key]], marker="*", markersize=16, color="black", linestyle="none",
                    label=f"chosen: {placement['pool']} x{placement['replicas']}, max batch {placement['batchSize']}, "
                          f"concurrency {best['concurrency']} "
                          f"(predicted p{data['slo']['percentile']} at {placement['shareRps']:g} requests/s: "
                          f"{placement['predictedLatencyMs']:.4g} ms)")
    if slo:
        ax.axhline(data["slo"]["latencyMs"], color="tab:red", linewidth=0.8,
                   label=f"SLO p{data['slo']['percentile']} <= {data['slo']['latencyMs']:g} ms")
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel=ylabel,
           title=f"{data['namespace']}/{data['name']}: {title}")
    ax.set_xscale("log", base=2)
    sizes = sorted({p["batchSize"] for points in data["profiles"].values() for p in points})
    ax.set_xticks(sizes, [str(b) for b in sizes])
    ax.minorticks_off()
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _latency_figure(data: dict[str, Any], path: Path) -> None:
    p = data["slo"]["percentile"]
    _by_batch_figure(data, path, "latencyMs", f"p{50 if p == 50 else 99 if p == 99 else 95} latency of one batch (ms)",
                     "measured latency by batch size", slo=True)


def _throughput_figure(data: dict[str, Any], path: Path) -> None:
    _by_batch_figure(data, path, "throughputIps", "throughput of one replica (inferences/s)",
                     "measured throughput by batch size", slo=False)


def _cost_figure(data: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), dpi=100, sharex=True)
    loads = data["loads"]
    for ax, key, ylabel in ((top, "costPerHour", "USD per hour"), (bottom, "costPerMillion",
                                                                    "USD per million inferences")):
        for series, values in data[key].items():
            nan = [math.nan if v is None else v for v in values]
            if series == "chosen":
                ax.plot(loads, nan, color="black", linestyle="--", linewidth=1.4, label="chosen", zorder=3,
                        drawstyle="steps-post")
            else:
                ax.plot(loads, nan, color=_colour(data, series), label=f"{series} alone", drawstyle="steps-post")
        for c in data["crossovers"][:SHOWN_CROSSOVERS]:  # the rest: report.md and report.json
            ax.axvline(c["rps"], color="tab:red", linewidth=0.8)
        decision = data["decision"]
        if decision["feasible"]:
            y = decision["totalCostPerHour"] if key == "costPerHour" else decision.get("costPerMillion")
            if y is not None:
                ax.plot([data["targetRps"]], [y], marker="*", markersize=16, color="black", linestyle="none",
                        label=f"chosen at {data['targetRps']:g} requests/s: {y:.4g}")
        drawn = any(v is not None and v > 0 for values in data[key].values() for v in values)
        ax.set(xscale="log", yscale="log" if drawn else "linear", ylabel=ylabel)
        if not drawn:  # a log scale has nothing to scale: no load in the range is feasible
            ax.text(0.5, 0.5, "infeasible at every load drawn", transform=ax.transAxes, ha="center",
                    va="center", color="tab:red")
        ax.grid(True, which="both", linewidth=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper left" if key == "costPerHour" else "upper right")
    for c in data["crossovers"][:SHOWN_CROSSOVERS]:
        top.annotate(f"{c['rps']:.1f} req/s: {'+'.join(c['from']) or 'none'} -> {'+'.join(c['to']) or 'none'}",
                     (c["rps"], 0.02), xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points",
                     color="tab:red", fontsize=8, rotation=90, va="bottom")
    bottom.set_xlabel("load (requests/s)")
    slo = data["slo"]
    top.set_title(f"{data['namespace']}/{data['name']}: cost of meeting p{slo['percentile']} <= "
                  f"{slo['latencyMs']:g} ms (headroom {data['headroom']:g})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(data: dict[str, Any], command: str = "") -> str:
    slo = data["slo"]
    decision = data["decision"]
    lines = [f"# {data['namespace']}/{data['name']}: where to run it", ""]
    if command:
        lines += [f"Written by `{command}` on {time.strftime('%Y-%m-%d')}, from {data['source']}.", ""]
    lines += [f"- model: {data['model']} ({data['modelDigest']})",
              f"- SLO: p{slo['percentile']} <= {slo['latencyMs']:g} ms at {data['targetRps']:g} requests/s, "
              f"headroom {data['headroom']:g}"]
    for pool in data["pools"]:
        lines.append(f"- pool {pool['name']} ({pool['accelerator']}, {pool['price']}): "
                     + (pool["profile"] if pool["measured"] else "no ModelProfile (the operator would benchmark it)"))
    lines += ["", f"## The decision at {data['targetRps']:g} requests/s", ""]
    if decision["feasible"]:
        lines += [f"{decision['totalCostPerHour']:.4g} USD/h, {_cell(decision.get('costPerMillion'))} USD per million "
                  f"inferences" + (f", {_cell(decision.get('wattHoursPerMillion'))} Wh per million"
                                   if decision.get("wattHoursPerMillion") is not None else "") + ":", "",
                  "| pool | replicas | max batch | share (requests/s) | predicted p"
                  f"{slo['percentile']} (ms) | USD/h | USD per million |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for p in decision["placements"]:
            lines.append(f"| {p['pool']} | {p['replicas']} | {p['batchSize']} | {_cell(p['shareRps'])} | "
                         f"{_cell(p['predictedLatencyMs'])} | {_cell(p['costPerHour'])} | "
                         f"{_cell(p.get('costPerMillion'))} |")
    else:
        lines.append(f"Infeasible: {decision.get('message') or 'no pool meets the SLO at this load'}")
    lines += ["", "## Crossovers", ""]
    if data["crossovers"]:
        for c in data["crossovers"][:LISTED_CROSSOVERS]:
            lines.append(f"- at **{c['rps']:.1f} requests/s** the choice goes from {'+'.join(c['from']) or 'nothing'} "
                         f"({_cell(c['costPerHourBefore'])} USD/h just below) to {'+'.join(c['to']) or 'nothing'} "
                         f"({_cell(c['costPerHourAfter'])} USD/h)")
        if len(data["crossovers"]) > LISTED_CROSSOVERS:
            rest = data["crossovers"][LISTED_CROSSOVERS:]
            lines.append(f"- and {len(rest)} more from {rest[0]['rps']:.1f} to {rest[-1]['rps']:.1f} requests/s "
                         "(report.json), where the choice moves between whole GPU nodes and nodes plus CPU "
                         "replicas" if any(len(c["to"]) > 1 or len(c["from"]) > 1 for c in rest) else "")
    else:
        lines.append(f"None between {data['loads'][0]:.3g} and {data['loads'][-1]:.3g} requests/s: the choice "
                     "stays on the same pools.")
    if data["capacityLifted"]:
        lines += ["", "(The sweep lifts the replica caps so that each pool's cost reads at every load; "
                      "`--keep-capacity` keeps them.)"]
    lines += ["", "## Cost against load", "", "| load (requests/s) | chosen | USD/h | USD per million | "
              + " | ".join(f"{p['name']} alone USD/h" for p in data["pools"] if p["measured"]) + " |",
              "| --- | --- | --- | --- | " + " | ".join("---" for p in data["pools"] if p["measured"]) + " |"]
    for i in _table_rows(data["loads"]):
        row = [f"{data['loads'][i]:.4g}", "+".join(data["chosenPools"][i]) or "infeasible",
               _cell(data["costPerHour"]["chosen"][i]), _cell(data["costPerMillion"]["chosen"][i])]
        row += [_cell(data["costPerHour"][p["name"]][i]) for p in data["pools"] if p["measured"]]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "## Figures", "", "![latency by batch size](latency-by-batch.png)", "",
              "![throughput by batch size](throughput-by-batch.png)", "",
              "![cost per hour and per million inferences against load](cost-vs-load.png)", ""]
    return "\n".join(lines)


def _table_rows(loads: list[float]) -> list[int]:
    """Indices of the scanned loads nearest to 1, 2, 5 x 10^k within the range."""
    wanted = [m * 10 ** k for k in range(-3, 7) for m in (1, 2, 5) if loads[0] <= m * 10 ** k <= loads[-1]]
    return sorted({min(range(len(loads)), key=lambda i: abs(math.log(loads[i] / w))) for w in wanted})


__all__ = ["FIGURES", "build", "markdown", "write"]
