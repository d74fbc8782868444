"""`hybridplace explain NAME`: the operator's decision for an InferenceDeployment in the cluster,
read from its status, printed like `hybridplace recommend` prints an offline one.

Exit codes: 0 a decision is shown (feasible or not), 2 bad input or not found (no such
InferenceDeployment, the CRDs not installed, no usable kubeconfig), 3 the InferenceDeployment
exists but the operator has not decided yet (its conditions and pool states are shown), 1 the
API server could not be reached or refused the request.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import conditions as c
from ..api import GROUP, VERSION, builtin_digest
from .errors import UsageError, kubeconfig_errors, unreachable
from .render import FORMATS, render

PLURAL = "inferencedeployments"
EXIT_API_ERROR = 1
EXIT_NO_DECISION = 3

# Placed False while the operator waits for measurements to decide again: the decision kept
# in status is the last one made (controller/plan.py).
RE_DECIDING = (c.WAITING_FOR_PROFILES,)
# Placed False with the current decision not put in place (the image, a name taken, a child the
# API server refused): the condition's message says why.
NOT_APPLIED = (c.IMAGE_NOT_ALLOWED, c.NAME_CONFLICT, c.CHILD_REJECTED)

# The decision's fields in status.decision, copied as they are (docs/api.md).
DECISION_FIELDS = ("feasible", "objective", "placements", "routing", "totalCostPerHour", "totalWatts",
                   "costPerMillion", "wattHoursPerMillion",
                   "bestAchievableLatencyMs", "bestAchievablePool", "bestAchievableBatchSize",
                   "alternatives")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "explain", help="show the decision for an InferenceDeployment in the cluster",
        description="Show where the operator placed an InferenceDeployment and why: the chosen "
        "pools, replicas, max batch size, predicted latency and cost, every alternative with "
        "the reason it lost, the pools' profile states and the conditions, from its status. "
        "Exit codes: 0 shown, 2 not found or bad input, 3 no decision yet, 1 API error.",
    )
    parser.add_argument("name", metavar="NAME", help="the InferenceDeployment's name")
    parser.add_argument("-n", "--namespace", default=None,
                        help="its namespace (default: the kubeconfig context's, else default)")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then "
                        "in-cluster)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")
    parser.add_argument("-o", "--output", choices=FORMATS, default="table",
                        help="table (default), json or yaml")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    client, namespace = _client(args.kubeconfig, args.context, args.namespace)
    with client:
        obj = _get(client, namespace, args.name)
        if obj is None:
            return EXIT_API_ERROR
    out = report_from_object(obj)
    sys.stdout.write(render([out], args.output))
    if out.get("feasible") is None:
        print(f"hybridplace explain: InferenceDeployment {namespace}/{args.name} has no decision "
              f"yet: {out.get('waiting') or 'the operator has not reconciled it'}",
              file=sys.stderr)
        return EXIT_NO_DECISION
    return 0


def _client(kubeconfig: str | None, context: str | None, namespace: str | None) -> Any:
    """An ApiClient and the namespace to use: -n, else the context's, else default."""
    from kubernetes import client as k8s
    from kubernetes import config

    try:
        configuration = k8s.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context,
                                client_configuration=configuration)
        if namespace is None:
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context is not None:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next((c for c in contexts if c.get("name") == context), active)
            namespace = (active or {}).get("context", {}).get("namespace")
    except kubeconfig_errors() as err:
        if kubeconfig is not None or context is not None:
            raise UsageError(f"--kubeconfig {kubeconfig or '(default)'}: cannot use it: "
                             f"{_one_line(err)}") from None
        try:  # no kubeconfig anywhere: inside a pod, the service account's
            configuration = k8s.Configuration()
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            raise UsageError(f"no kubeconfig found ({_one_line(err)}) and not in a cluster; "
                             f"pass --kubeconfig or set KUBECONFIG") from None
    return k8s.ApiClient(configuration), namespace or "default"


def _get(client: Any, namespace: str, name: str) -> dict[str, Any] | None:
    """The object as a dict; None after printing why the API server could not answer.
    Not found raises UsageError (exit 2)."""
    from kubernetes import client as k8s

    api = k8s.CustomObjectsApi(client)
    host = client.configuration.host
    try:
        return api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                _request_timeout=(5, 30))
    except k8s.ApiException as err:
        status = _status_body(err)
        if err.status == 404:
            if (status.get("details") or {}).get("kind") == PLURAL:
                raise UsageError(f"InferenceDeployment {namespace}/{name} not found (`kubectl "
                                 f"get infd -n {namespace}` lists them)") from None
            raise UsageError(f"the API server at {host} does not serve {PLURAL}.{GROUP}/"
                             f"{VERSION}: are the hybridplace CRDs installed?") from None
        message = status.get("message") or err.reason or "no message"
        print(f"hybridplace explain: the API server at {host} refused to get InferenceDeployment "
              f"{namespace}/{name}: {err.status} {_one_line(message)}", file=sys.stderr)
    except Exception as err:  # the transport's errors; anything else is re-raised
        if not unreachable(err):
            raise
        print(f"hybridplace explain: cannot reach the API server at {host}: {_one_line(err)}",
              file=sys.stderr)
    return None


def _status_body(err: Any) -> dict[str, Any]:
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def report_from_object(obj: dict[str, Any]) -> dict[str, Any]:
    """The report render.py prints, from an InferenceDeployment as the API server returns it.

    The decision fields are status.decision as the operator wrote it; `message` is the Placed
    condition's (the decision's sentence); `feasible` is absent when there is no decision, and
    `waiting` then says why. `loadRps` is the load decided at, `scaling` status.scaling as the
    operator wrote it. `note` flags a decision that may be out of date."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    model = spec.get("model") or {}
    slo = spec.get("slo") or {}
    conditions = status.get("conditions") or []
    by_type = {c.get("type"): c for c in conditions}
    digest = status.get("modelDigest") or model.get("digest")
    if digest is None and model.get("builtin"):
        digest = builtin_digest(model["builtin"])
    out: dict[str, Any] = {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "modelDigest": digest,
        "slo": {"percentile": slo.get("percentile", 95), "latencyMs": slo.get("latencyMs")},
        "targetRps": (spec.get("load") or {}).get("targetRps"),
    }
    # The load the decision was solved for: status.scaling.loadRps (the observed load in scaling
    # mode Operator), else the target (a status written before status.scaling existed).
    scaling = status.get("scaling") or {}
    out["loadRps"] = scaling["loadRps"] if scaling.get("loadRps") is not None else out["targetRps"]
    if scaling:
        out["scaling"] = dict(scaling)
    out["mode"] = (spec.get("placement") or {}).get("mode", "Apply")
    decision = status.get("decision") or {}
    placed = by_type.get("Placed") or {}
    if decision:
        out.update({k: decision[k] for k in DECISION_FIELDS if k in decision})
        if "objective" not in out:
            out["objective"] = (spec.get("placement") or {}).get("objective", "cost")
        out["message"] = placed.get("message") or ""
        if decision.get("decidedAt"):
            out["decidedAt"] = decision["decidedAt"]
    else:
        out["objective"] = (spec.get("placement") or {}).get("objective", "cost")
        out["waiting"] = placed.get("message") or (by_type.get("Profiled") or {}).get("message")
    notes = []
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        notes.append(f"the status is for generation {observed}; the spec is at generation "
                     f"{generation} (the operator has not caught up)")
    if decision and placed.get("status") not in (None, "True") and decision.get("feasible"):
        reason = placed.get("reason")
        if reason in RE_DECIDING:
            notes.append(f"Placed is {placed.get('status')} ({reason}): this is the last decision made, "
                         "kept while the operator re-decides")
        elif reason in NOT_APPLIED:  # the decision is current; the message says why it is not in place
            notes.append(f"Placed is {placed.get('status')} ({reason}): {placed.get('message') or 'not placed'}")
        else:
            notes.append(f"Placed is {placed.get('status')} ({reason}): {placed.get('message') or 'no message'}; "
                         "the decision shown is the last one made")
    if notes:
        out["note"] = "; ".join(notes)
    out["generation"] = generation
    out["observedGeneration"] = observed
    out["profiles"] = status.get("profiles") or []
    out["conditions"] = conditions
    return out
