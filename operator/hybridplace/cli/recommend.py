"""`hybridplace recommend`: the operator's placement decision, offline, from YAML files.

Reads InferenceDeployments, HardwarePools and ModelProfiles from files and folders, validates
them as the API server would, and runs the same engine the operator runs, through the same
adapter (`placement.from_api`): for each InferenceDeployment, its allowed pools (all pools given
when it names none) and, per pool, the ModelProfile of its model digest in its namespace. Pools
without such a profile are listed as NoProfile alternatives (the operator would benchmark them
first); when none of its pools has one, that is an error. A pool it names that does not admit its
namespace (spec.allowedNamespaces) is left out and listed Missing, as the operator does; when
no pool it names admits it, that is an error.

Exit codes: 0 a decision for every InferenceDeployment (feasible or not; see
--fail-if-infeasible), 2 bad input (one line naming the file, the object and the field),
3 with --fail-if-infeasible when some decision is infeasible.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from ..api import FileProblem, HardwarePool, InferenceDeployment, Loaded, ModelProfile, load_objects
from ..api.files import MAX_LINE, cut
from ..controller.plan import model_digest
from ..placement import NO_PROFILE, Alternative, Decision, Request, solve
from ..placement.from_api import pool_from, profile_from, request_from
from .errors import UsageError
from .render import FORMATS, render

EXIT_INFEASIBLE = 3


GATEWAY_HELP = ("decide as where a Gateway API Gateway routes splits (the operator's --default-gateway): "
                "weighted per pool. Without it, only an InferenceDeployment that sets spec.serving.gateway "
                "gets weighted splits; the others get an even spread a Service carries, or one pool, as the "
                "operator would decide them")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "recommend", help="decide a placement offline from YAML files",
        description="Decide where each InferenceDeployment in the files should run, with the "
        "operator's engine, without a cluster: its chosen pools, replicas and max batch size, "
        "predicted latency and cost, and every alternative with the reason it lost. Profiles "
        "are matched to an InferenceDeployment by namespace and model digest, as the operator "
        "does. Exit codes: 0 decided, 2 bad input, 3 infeasible with --fail-if-infeasible.",
    )
    parser.add_argument("-f", "--filename", dest="paths", action="append", required=True,
                        metavar="PATH",
                        help="a YAML file or folder (multi-document, List kinds); repeat it")
    parser.add_argument("-o", "--output", choices=FORMATS, default="table",
                        help="table (default), or json/yaml: one object per InferenceDeployment "
                        "(a list when there are several)")
    parser.add_argument("--target-rps", type=_positive, nargs="+", default=None, metavar="RPS",
                        help="decide at this load (requests/s) instead of spec.load.targetRps; "
                        "several values give one decision per value")
    parser.add_argument("--gateway", action="store_true", help=GATEWAY_HELP)
    parser.add_argument("--fail-if-infeasible", action="store_true",
                        help=f"exit {EXIT_INFEASIBLE} when some decision is infeasible (for CI)")
    parser.set_defaults(handler=run)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0 (requests/s)")
    return value


def run(args: argparse.Namespace) -> int:
    try:
        loaded = load_objects(args.paths)
    except FileProblem as err:
        # FileProblem lists every bad field of the first bad file, one per line.
        raise UsageError(cut("; ".join(str(err).splitlines()), 4 * MAX_LINE)) from None
    reports = recommend(loaded, target_rps=args.target_rps or (), gateway=args.gateway)
    sys.stdout.write(render(reports, args.output))
    if args.fail_if_infeasible and not all(r["feasible"] for r in reports):
        return EXIT_INFEASIBLE
    return 0


@dataclasses.dataclass(frozen=True)
class _Found:
    source: str
    obj: Any


def _namespace(obj: InferenceDeployment | ModelProfile) -> str:
    return obj.metadata.namespace or "default"  # as kubectl apply would without -n


def _ref(found: _Found) -> str:
    obj = found.obj
    name = obj.metadata.name or "<unnamed>"
    if isinstance(obj, HardwarePool):
        return f"{found.source}: HardwarePool {name}"
    return f"{found.source}: {obj.kind} {_namespace(obj)}/{name}"


def _index(loaded: Sequence[Loaded]) -> tuple[list[_Found], dict[str, _Found],
                                                dict[tuple[str, str, str], _Found]]:
    """InferenceDeployments in order; pools by name; profiles by (namespace, digest, pool).
    Two objects for one key are refused: which one the operator would see is undefined."""
    infds: list[_Found] = []
    pools: dict[str, _Found] = {}
    profiles: dict[tuple[str, str, str], _Found] = {}
    seen_infds: dict[tuple[str, str], _Found] = {}
    for item in loaded:
        found = _Found(item.source, item.obj)
        obj = item.obj
        if not obj.metadata.name:
            # The API server requires one (generateName is for create, not for these files).
            raise UsageError(f"{_ref(found)}: metadata.name: required value")
        if isinstance(obj, InferenceDeployment):
            key = (_namespace(obj), obj.metadata.name or "")
            if key in seen_infds:
                raise UsageError(f"{_ref(found)}: metadata.name: defined twice (also in "
                                 f"{seen_infds[key].source})")
            seen_infds[key] = found
            infds.append(found)
        elif isinstance(obj, HardwarePool):
            if obj.name in pools:
                raise UsageError(f"{_ref(found)}: metadata.name: defined twice (also in "
                                 f"{pools[obj.name].source})")
            pools[obj.name] = found
        elif isinstance(obj, ModelProfile):
            pkey = (_namespace(obj), obj.spec.model.digest, obj.spec.pool)
            if pkey in profiles:
                raise UsageError(
                    f"{_ref(found)}: spec.pool: a second ModelProfile of digest "
                    f"{obj.spec.model.digest} on pool {obj.spec.pool} in namespace {pkey[0]} "
                    f"(the other is {_ref(profiles[pkey])}); keep one")
            profiles[pkey] = found
    return infds, pools, profiles


def recommend(loaded: Sequence[Loaded], target_rps: Sequence[float] = (),
              gateway: bool = False) -> list[dict[str, Any]]:
    """One report per InferenceDeployment (per load in `target_rps`, when given), in file
    order. `gateway`: a Gateway routes every deployment's splits (else only those that name
    one in spec.serving.gateway). Raises UsageError for input the decision cannot be made from."""
    infds, pools, profiles = _index(loaded)
    if not infds:
        kinds = sorted({item.obj.kind for item in loaded})
        raise UsageError("no InferenceDeployment in the files given"
                         + (f" (found only {', '.join(kinds)})" if kinds else " (no objects)")
                         + "; add one with -f")
    reports = []
    for found in infds:
        infd: InferenceDeployment = found.obj
        allowed, used = _inputs(found, pools, profiles)
        excluded = not_admitted(found, pools)
        request = routed_request(infd, gateway)
        engine_pools = [pool_from(pools[name].obj) for name in allowed]
        engine_profiles = [profile_from(p.obj) for p in used.values()]
        for load in target_rps or (request.target_rps,):
            decision = solve(dataclasses.replace(request, target_rps=load), engine_pools,
                             engine_profiles)
            if excluded:  # listed as the operator lists its Missing pools (controller/plan.py _decide)
                decision = dataclasses.replace(decision, alternatives=(*decision.alternatives, *(
                    Alternative(pool=x["pool"], reason=NO_PROFILE, message=x["message"]) for x in excluded)))
            reports.append(report(found, decision, load, allowed, used, excluded))
    return reports


def routed_request(infd: InferenceDeployment, gateway: bool) -> Request:
    """The solver's request as the operator makes it (controller/plan.py): a split is weighted
    only where a Gateway routes it (`gateway`: the operator's --default-gateway, or a Gateway
    named in spec.serving.gateway), else spread evenly over the replicas."""
    request = request_from(infd)
    if gateway or infd.spec.serving.gateway is not None:
        return request
    return dataclasses.replace(request, weighted_routing=False)


def _inputs(found: _Found, pools: dict[str, _Found],
            profiles: dict[tuple[str, str, str], _Found]) -> tuple[list[str], dict[str, _Found]]:
    """The InferenceDeployment's allowed pool names and the profiles found for them. A pool it
    names that does not admit its namespace is not allowed (see `not_admitted`); when it names
    pools and none admits it, that is bad input."""
    infd: InferenceDeployment = found.obj
    named = infd.spec.placement.pools or []
    for i, name in enumerate(named):
        if name not in pools:
            known = ", ".join(sorted(pools)) or "none"
            raise UsageError(f"{_ref(found)}: spec.placement.pools[{i}]: HardwarePool {name!r} "
                             f"is not in the files given (HardwarePools found: {known})")
    namespace = _namespace(infd)
    if named:
        allowed = sorted({name for name in named if pools[name].obj.spec.allows(namespace)})
        if not allowed:
            raise UsageError(f"{_ref(found)}: spec.placement.pools[0]: HardwarePool {named[0]!r} does not admit "
                             f"namespace {namespace} (its spec.allowedNamespaces), nor does any other pool named")
    else:
        allowed = sorted(n for n, p in pools.items() if p.obj.spec.allows(namespace))
    if not allowed:
        raise UsageError(f"{_ref(found)}: spec.placement.pools: no HardwarePool in the files "
                         f"given; add the pools' YAML with -f")
    digest = model_digest(infd)
    used = {pool: profiles[(namespace, digest, pool)] for pool in allowed
            if (namespace, digest, pool) in profiles}
    if not used:
        raise UsageError(f"{_ref(found)}: spec.model: no ModelProfile of its digest {digest} "
                         f"in namespace {namespace} for any of its pools "
                         f"({', '.join(allowed)}){_profile_hint(namespace, digest, profiles)}")
    return allowed, used


def not_admitted(found: _Found, pools: dict[str, _Found]) -> list[dict[str, Any]]:
    """The pools the InferenceDeployment names that do not admit its namespace, as the operator
    reports them in status.profiles (Missing, NamespaceNotAllowed; controller/plan.py)."""
    infd: InferenceDeployment = found.obj
    namespace = _namespace(infd)
    return [{"pool": name, "state": "Missing", "reason": "NamespaceNotAllowed",
             "message": f"HardwarePool {name} does not admit namespace {namespace} (spec.allowedNamespaces)"}
            for name in sorted(set(infd.spec.placement.pools or []))
            if name in pools and not pools[name].obj.spec.allows(namespace)]


def _profile_hint(namespace: str, digest: str,
                  profiles: dict[tuple[str, str, str], _Found]) -> str:
    """Why the profiles given did not match: another namespace, or another digest."""
    elsewhere = sorted({ns for ns, d, _ in profiles if d == digest and ns != namespace})
    if elsewhere:
        return (f"; profiles of this digest are in namespace {', '.join(elsewhere)} (profiles "
                f"are matched by namespace: set metadata.namespace)")
    others = sorted({d for ns, d, _ in profiles if ns == namespace})
    if others:
        return (f"; the ModelProfiles given in namespace {namespace} are of "
                f"{', '.join(others)} (spec.model.digest must equal the model's digest)")
    return "; no ModelProfile was given (-f the profiles' YAML)"


def report(found: _Found, decision: Decision, target_rps: float, allowed: Sequence[str],
           used: dict[str, _Found], excluded: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The flat report render.py prints: who, then the decision as status.decision; `profiles`
    per pool by name, `excluded` (not_admitted) among them."""
    infd: InferenceDeployment = found.obj
    out: dict[str, Any] = {
        "name": infd.metadata.name,
        "namespace": _namespace(infd),
        "source": found.source,
        "modelDigest": model_digest(infd),
        "slo": {"percentile": infd.spec.slo.percentile, "latencyMs": infd.spec.slo.latency_ms},
        "targetRps": target_rps,
    }
    out.update(decision.to_dict())
    out["message"] = decision.message
    states = [
        {"pool": pool, "state": "Measured", "name": used[pool].obj.metadata.name,
         "message": f"from {used[pool].source}"} if pool in used
        else {"pool": pool, "state": "Missing", "reason": "NoProfile",
              "message": "no ModelProfile of this digest in the files given; the operator "
                         "would benchmark this pool first"}
        for pool in allowed
    ]
    out["profiles"] = sorted([*states, *excluded], key=lambda x: x["pool"])
    return out
