"""Print recommendations and explanations: one dict per InferenceDeployment, as a table for an
SRE or as JSON/YAML for a script. `recommend` and `explain` share this, so both read the same.

A report is flat and camelCase: identifying fields (name, namespace, modelDigest, slo,
targetRps; for explain also loadRps, the load decided at, and scaling), then the decision
exactly as status.decision / `Decision.to_dict()` (feasible, objective, placements,
totalCostPerHour, totalWatts, costPerMillion, wattHoursPerMillion, bestAchievableLatencyMs,
alternatives), then `message` and, where known, `profiles`, `conditions`, `decidedAt`, `generation`,
`observedGeneration`. Units are in the names (Ms, Rps, PerHour USD per hour, watts,
PerMillion per million inferences: USD, or watt-hours for wattHoursPerMillion).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")


def render(reports: Sequence[dict[str, Any]], fmt: str) -> str:
    """JSON/YAML: one report is one object; several are a list (in input order). A figure too
    large to be a number (a cost per million inferences at a load of 1e-300 requests/s) is null:
    JSON has no Infinity."""
    if fmt == "table":
        return "\n\n".join(render_table(r) for r in reports) + "\n"
    data: Any = _finite(reports[0] if len(reports) == 1 else list(reports))
    if fmt == "json":
        return json.dumps(data, indent=2, allow_nan=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=100)
    raise ValueError(f"unknown output format {fmt!r}; known: {', '.join(FORMATS)}")


def _finite(data: Any) -> Any:
    """`data` with every infinite or NaN float replaced by None."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _columns(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded (free text)."""
    cells = [list(header)] + [[_num(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append((indent + "  ".join(padded)).rstrip())
    return lines


def slo_text(report: dict[str, Any]) -> str:
    slo = report.get("slo") or {}
    return f"p{slo.get('percentile', '?')}<={_num(slo.get('latencyMs'))}ms"


def decided_load(report: dict[str, Any]) -> Any:
    """The load the decision was made at: `loadRps` (explain: status.scaling.loadRps), else
    `targetRps` (recommend decides at the target, or at --target-rps)."""
    load = report.get("loadRps")
    return report.get("targetRps") if load is None else load


def load_text(report: dict[str, Any]) -> str:
    """The load decided at; with the target and the scaling mode, action and message where the
    operator decided at another load (scaling mode Operator follows the observed load)."""
    load, target = decided_load(report), report.get("targetRps")
    text = f"{_num(load)} requests/s"
    if target is None or load == target:
        return text
    text += f" (spec.load.targetRps {_num(target)}"
    scaling = report.get("scaling") or {}
    if scaling.get("mode"):
        text += f"; scaling {scaling['mode']}"
        if scaling.get("action"):
            text += f", {scaling['action']}"
        if scaling.get("message"):
            text += f": {scaling['message']}"
    return text + ")"


def _infeasible_text(report: dict[str, Any], percentile: int) -> str:
    text = f"no placement meets {slo_text(report)} at {_num(decided_load(report))} requests/s"
    best = report.get("bestAchievableLatencyMs")
    if best is not None:
        text += f"; best achievable p{percentile} is {_num(best)} ms"
        if report.get("bestAchievablePool"):
            text += f" on {report['bestAchievablePool']}"
        if report.get("bestAchievableBatchSize") is not None:
            text += f" at batch {report['bestAchievableBatchSize']}"
    return text


def routing_text(report: dict[str, Any]) -> str:
    """How the decision's traffic reaches its replicas: the HTTPRoute's weights as percentages,
    the even share per replica a Service gives, or one pool."""
    placements = report.get("placements") or []
    routing = report.get("routing")
    if routing == "Weighted":
        total = sum(p.get("weight") or 0 for p in placements) or 1
        weights = ", ".join(f"{p.get('pool')} {100 * (p.get('weight') or 0) / total:.1f}% (weight {p.get('weight')})"
                            for p in placements)
        return f"Weighted: an HTTPRoute sends each pool's Service its share: {weights}"
    if routing == "EvenSpread":
        replicas = sum(p.get("replicas") or 0 for p in placements) or 1
        share = sum(p.get("shareRps") or 0 for p in placements) / replicas
        return (f"EvenSpread: the Service gives each of {replicas} replicas {_num(share)} requests/s "
                "(no gateway: a split every replica can take evenly)")
    return f"{routing}: one pool's Service"


def render_table(report: dict[str, Any]) -> str:
    """Headline, the chosen placement (or why there is none), then the alternatives with the
    reason each lost; for `explain`, the conditions and the pools' profile states too."""
    percentile = (report.get("slo") or {}).get("percentile", 95)
    name = f"{report.get('namespace') or 'default'}/{report.get('name') or '<unnamed>'}"
    lines = [f"InferenceDeployment {name}"]
    facts = [("SLO", slo_text(report)),
             ("load", load_text(report)),
             ("objective", report.get("objective") or "-")]
    if report.get("mode"):
        facts.append(("mode", report["mode"]))
    if report.get("modelDigest"):
        facts.append(("model", report["modelDigest"]))
    if report.get("source"):
        facts.append(("from", report["source"]))
    if report.get("decidedAt"):
        facts.append(("decided", report["decidedAt"]))
    width = max(len(k) for k, _ in facts)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in facts]
    if report.get("note"):
        lines.append(f"  NOTE: {report['note']}")

    if report.get("feasible") is None:
        waiting = report.get("waiting") or "the operator has not reconciled it"
        lines += ["", f"  NO DECISION YET: {waiting}"]
    elif report["feasible"]:
        placements = report.get("placements") or []
        replicas = sum(p.get("replicas") or 0 for p in placements)
        watts = report.get("totalWatts")
        per_million = report.get("costPerMillion")
        wh_million = report.get("wattHoursPerMillion")
        lines += ["", f"  CHOSEN: {replicas} replica{'s' if replicas != 1 else ''}, "
                      f"{_num(report.get('totalCostPerHour'))} USD/h"
                      + (f", {_num(watts)} W" if watts is not None else "")
                      + (f"; {_num(per_million)} USD" if per_million is not None else "")
                      + (f", {_num(wh_million)} Wh" if wh_million is not None else "")
                      + (" per million inferences" if per_million is not None else "")]
        weighted = any(p.get("weight") is not None for p in placements)
        rows = [[p.get("pool"), p.get("replicas"), p.get("batchSize"), p.get("shareRps"),
                 *([p.get("weight")] if weighted else []),
                 p.get("predictedLatencyMs"), p.get("utilisation"), p.get("costPerHour"),
                 p.get("watts"), p.get("costPerMillion"), p.get("wattHoursPerMillion")]
                for p in placements]
        lines += _columns(["POOL", "REPLICAS", "MAX BATCH", "SHARE RPS", *(["WEIGHT"] if weighted else []),
                           f"P{percentile} MS", "UTIL", "USD/H", "WATTS", "USD/M INF", "WH/M INF"], rows)
        if report.get("routing"):
            lines.append(f"  ROUTING: {routing_text(report)}")
        if report.get("message"):
            lines.append(f"  {report['message']}")
    else:
        # The engine's sentence says it all (the best achievable latency, pool and batch);
        # without one (an old status), it is rebuilt from the fields.
        why = report.get("message") or _infeasible_text(report, percentile)
        lines += ["", f"  INFEASIBLE: {why}"]

    alternatives = report.get("alternatives") or []
    if alternatives:
        rows = [[a.get("pool"), a.get("reason"), a.get("replicas"), a.get("batchSize"),
                 a.get("predictedLatencyMs"), a.get("costPerHour"), a.get("message")]
                for a in alternatives]
        lines += ["", "  ALTERNATIVES (why each lost)"]
        lines += _columns(["POOL", "REASON", "REPLICAS", "MAX BATCH", f"P{percentile} MS",
                           "USD/H", "WHY"], rows)

    profiles = report.get("profiles") or []
    if profiles:
        rows = [[p.get("pool"), p.get("state"), p.get("name") or "-",
                 ": ".join(x for x in (p.get("reason"), p.get("message")) if x) or "-"]
                for p in profiles]
        lines += ["", "  PROFILES"]
        lines += _columns(["POOL", "STATE", "MODELPROFILE", "DETAIL"], rows)

    conditions = report.get("conditions") or []
    if conditions:
        rows = [[c.get("type"), c.get("status"), c.get("reason"), c.get("message") or "-"]
                for c in conditions]
        lines += ["", "  CONDITIONS"]
        lines += _columns(["TYPE", "STATUS", "REASON", "MESSAGE"], rows)
    return "\n".join(lines)
