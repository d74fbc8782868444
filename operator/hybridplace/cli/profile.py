"""`hybridplace profile export` and `hybridplace profile import`: ModelProfiles between clusters.

export: the ModelProfiles of a namespace (or all), chosen by name, label selector or model
digest, as multi-document YAML without what the API server owns (uid, resourceVersion,
managedFields, creationTimestamp, generation, ownerReferences, status, ...): what `import` or
`kubectl apply` can create anywhere.

import: ModelProfiles from files, validated as the API server would (same schema and CEL rules),
written to the cluster as `provenance: imported` with where they came from in `spec.source`.
A profile of the same name is replaced whole (the import is what was exported, no field left
over from the old one); the operator then uses it like any other profile.

Exit codes: 0 done, 2 bad input with nothing written (a file, an object, a field, a flag, no
usable kubeconfig, a namespace that does not exist, the CRDs not installed), 1 the API server
could not be reached or refused a request (for import: with how many of the profiles were
written before).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from ..api import API_VERSION, FileProblem, ModelProfile, builtin_digest, load_objects
from ..api.files import MAX_LINE, cut
from .errors import UsageError

PLURAL = "modelprofiles"
PATH = "/apis/hybridplace.io/v1alpha1"
FIELD_MANAGER = "hybridplace-profile-import"
EXIT_API_ERROR = 1

# metadata the API server sets or owns: never exported, dropped on import.
SERVER_METADATA = ("uid", "resourceVersion", "managedFields", "creationTimestamp", "generation",
                   "ownerReferences", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
                   "finalizers", "generateName")
SERVER_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


class ApiFailure(Exception):
    """The API server could not be reached, or refused a call (exit 1)."""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile", help="export or import ModelProfiles",
        description="Move measurements between clusters: export ModelProfiles as YAML without "
        "server fields, import them elsewhere as provenance imported.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    export = verbs.add_parser(
        "export", help="write ModelProfiles as YAML, without server fields",
        description="Write the ModelProfiles of a namespace (or all, -A) as multi-document YAML, "
        "without uid, resourceVersion, managedFields, creationTimestamp, generation, "
        "ownerReferences or status. Exit codes: 0 written (also when none matched: a warning on "
        "stderr), 2 bad input, 1 API error.")
    export.add_argument("names", nargs="*", metavar="NAME", help="only these ModelProfiles (default: all)")
    scope = export.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", default=None,
                       help="their namespace (default: the kubeconfig context's, else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="from every namespace")
    export.add_argument("-l", "--selector", default="",
                        help="a label selector, for example hybridplace.io/pool=gpu-h200")
    export.add_argument("--digest", default=None, metavar="DIGEST",
                        help="only profiles of this model: sha256:<64 hex>, or builtin:<name> (mlp, resnet, ...)")
    export.add_argument("-f", "--file", default="-", metavar="FILE", help="write here (default: stdout)")
    _connection_flags(export)
    export.set_defaults(handler=run_export)

    imp = verbs.add_parser(
        "import", help="create or replace ModelProfiles from YAML files",
        description="Read ModelProfiles from files and folders, validate them as the API server "
        "would, and write them to the cluster as provenance imported, recording where they came "
        "from in spec.source. A profile of the same name is replaced. Exit codes: 0 all written, "
        "2 bad input (nothing is written), 1 an API error.")
    imp.add_argument("-f", "--file", dest="paths", action="append", required=True, metavar="PATH",
                     help="a YAML file or folder (multi-document, List kinds); repeat it")
    imp.add_argument("-n", "--namespace", default=None,
                     help="write them here (default: each object's namespace, else the kubeconfig "
                     "context's, else default)")
    imp.add_argument("--source", default=None, metavar="TEXT",
                     help="where they come from, in words (default: the file); kept in spec.source "
                     "before what the profile said")
    _connection_flags(imp)
    imp.set_defaults(handler=run_import)


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: current)")


# -- pure parts: what is exported, what is imported ----------------------------------------------

def parse_digest(text: str) -> str:
    """A model digest from `sha256:<64 hex>` or `builtin:<name>`; UsageError otherwise."""
    if text.startswith("builtin:"):
        try:
            return builtin_digest(text.split(":", 1)[1])
        except ValueError as err:
            raise UsageError(f"--digest {text}: {err}") from None
    hexpart = text.removeprefix("sha256:")
    if text.startswith("sha256:") and len(hexpart) == 64 and all(ch in "0123456789abcdef" for ch in hexpart):
        return text
    raise UsageError(f"--digest {cut(text, 100)!r}: expected sha256:<64 lowercase hex> or builtin:<name>")


def exportable(obj: dict[str, Any], keep_namespace: bool = True) -> dict[str, Any]:
    """A ModelProfile as the API server returns it, without what the server owns: it can be
    created in any cluster."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in SERVER_METADATA}
    if not keep_namespace:
        meta.pop("namespace", None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in SERVER_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    if not meta.get("labels"):
        meta.pop("labels", None)
    return {"apiVersion": obj.get("apiVersion", API_VERSION), "kind": "ModelProfile", "metadata": meta,
            "spec": obj.get("spec") or {}}


def select(items: list[dict[str, Any]], names: list[str], digest: str | None) -> list[dict[str, Any]]:
    """The profiles named (all, when none is), of `digest` when given, sorted by namespace and name."""
    wanted = set(names)
    found = [i for i in items
             if (not wanted or i["metadata"]["name"] in wanted)
             and (digest is None or ((i.get("spec") or {}).get("model") or {}).get("digest") == digest)]
    return sorted(found, key=lambda i: (i["metadata"].get("namespace") or "", i["metadata"]["name"]))


def to_yaml(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, width=120) if objects else ""


def imported(profile: ModelProfile, origin: str, namespace: str, source: str | None = None) -> dict[str, Any]:
    """The object to write for a profile read from `origin` ("file#N"): server fields dropped,
    `provenance: imported`, and `spec.source` saying where from (then what it said before)."""
    body = exportable(profile.to_dict())
    body["metadata"]["namespace"] = namespace
    spec = body["spec"]
    before = spec.get("source")
    was = f"{spec.get('provenance', 'measured')}: {before}" if before else spec.get("provenance", "measured")
    spec["provenance"] = "imported"
    spec["source"] = cut(f"imported from {source or origin} (was {was})", 1024)
    return body


# -- I/O ----------------------------------------------------------------------------------------

def _kube(kubeconfig: str | None, context: str | None, namespace: str | None) -> tuple[Any, str]:
    from ..controller.kube import Kube
    from .explain import _client

    client, default_namespace = _client(kubeconfig, context, namespace)
    return Kube(client, timeout=(5, 30)), default_namespace


def _call(kube: Any, what: str, method: str, path: str, body: Any = None,
          query: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """One request; a failure is a UsageError (exit 2: no such namespace, the CRDs missing) or
    an ApiFailure (exit 1: no answer, or the server refused)."""
    from ..controller.kube import ApiError

    try:
        return kube.request(method, path, body, query=query)
    except ApiError as err:
        _raise(kube, what, err, collection=path.endswith(PLURAL))
        raise  # pragma: no cover - _raise always raises


def run_export(args: argparse.Namespace) -> int:
    digest = parse_digest(args.digest) if args.digest else None
    kube, namespace = _kube(args.kubeconfig, args.context, args.namespace)
    path = f"{PATH}/{PLURAL}" if args.all_namespaces else f"{PATH}/namespaces/{namespace}/{PLURAL}"
    query = [("labelSelector", args.selector)] if args.selector else []
    try:
        items = _call(kube, "listing ModelProfiles", "GET", path, query=query).get("items") or []
    except ApiFailure as err:
        print(f"hybridplace profile export: {err}", file=sys.stderr)
        return EXIT_API_ERROR
    found = select(items, args.names, digest)
    missing = sorted(set(args.names) - {i["metadata"]["name"] for i in found})
    if missing:
        where = "any namespace" if args.all_namespaces else f"namespace {namespace}"
        raise UsageError(f"ModelProfile {', '.join(missing)} not found in {where}"
                         + (f" (with -l {args.selector})" if args.selector else "")
                         + (f" (of digest {digest})" if digest else ""))
    text = to_yaml([exportable(i) for i in found])
    if args.file == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.file).write_text(text)
        except OSError as err:
            raise UsageError(f"--file {args.file}: cannot write: {err.strerror or err}") from None
    if not found:
        print("hybridplace profile export: no ModelProfile matched", file=sys.stderr)
    else:
        print(f"hybridplace profile export: {len(found)} ModelProfile(s)"
              + (f" written to {args.file}" if args.file != "-" else ""), file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        loaded = load_objects(args.paths)
    except FileProblem as err:
        raise UsageError(cut("; ".join(str(err).splitlines()), 4 * MAX_LINE)) from None
    others = [x for x in loaded if not isinstance(x.obj, ModelProfile)]
    if others:
        first = others[0]
        raise UsageError(f"{first.source}: {first.obj.kind} {first.obj.metadata.name or '<unnamed>'}: kind: only "
                         "ModelProfile can be imported (point -f at the exported profiles)")
    if not loaded:
        raise UsageError(f"no ModelProfile in {', '.join(args.paths)}")
    kube, default_namespace = _kube(args.kubeconfig, args.context, args.namespace)
    bodies = []
    seen: dict[tuple[str, str], str] = {}
    for item in loaded:
        assert isinstance(item.obj, ModelProfile)
        namespace = args.namespace or item.obj.metadata.namespace or default_namespace
        key = (namespace, item.obj.metadata.name or "")
        if key in seen:
            raise UsageError(f"{item.source}: ModelProfile {key[0]}/{key[1]}: metadata.name: also in "
                             f"{seen[key]}; keep one")
        seen[key] = item.source
        bodies.append(imported(item.obj, item.source, namespace, args.source))
    try:
        _check_namespaces(kube, bodies, [item.source for item in loaded])
    except ApiFailure as err:
        print(f"hybridplace profile import: {err} (0 of {len(bodies)} written)", file=sys.stderr)
        return EXIT_API_ERROR
    written = 0
    for body in bodies:
        meta = body["metadata"]
        ref = f"ModelProfile {meta['namespace']}/{meta['name']}"
        try:
            verb = _write(kube, body, ref)
        except UsageError as err:
            if not written:
                raise  # nothing written: bad input (exit 2)
            print(f"hybridplace profile import: {err} ({written} of {len(bodies)} written)", file=sys.stderr)
            return EXIT_API_ERROR
        except ApiFailure as err:
            print(f"hybridplace profile import: {err} ({written} of {len(bodies)} written)", file=sys.stderr)
            return EXIT_API_ERROR
        written += 1
        print(f"{ref} {verb}")
    return 0


def _check_namespaces(kube: Any, bodies: list[dict[str, Any]], sources: list[str]) -> None:
    """Every namespace written to exists, before the first write: one GET per namespace, so that
    a missing one is bad input (exit 2) with nothing written. An importer not allowed to read
    namespaces (403) is not stopped here: the write then says."""
    from ..controller.kube import ApiError

    checked: set[str] = set()
    for body, source in zip(bodies, sources, strict=True):
        meta = body["metadata"]
        namespace = meta["namespace"]
        if namespace in checked:
            continue
        checked.add(namespace)
        try:
            kube.request("GET", f"/api/v1/namespaces/{namespace}")
        except ApiError as err:
            if err.status == 404:
                raise UsageError(f'{source}: ModelProfile {namespace}/{meta["name"]}: namespaces "{namespace}" not '
                                 f"found at {kube.client.configuration.host}; nothing written (create it, or "
                                 "choose another with -n)") from None
            if err.status in (401, 403):
                continue
            _raise(kube, f"reading namespace {namespace}", err)


def _write(kube: Any, body: dict[str, Any], ref: str) -> str:
    """Create `body`, or replace the profile of its name whole (read, then written over that
    version; one that changed or went meanwhile is tried once more)."""
    from ..controller.kube import ApiError

    meta = body["metadata"]
    collection = f"{PATH}/namespaces/{meta['namespace']}/{PLURAL}"
    query = [("fieldManager", FIELD_MANAGER)]
    for attempt in range(3):
        last = attempt == 2
        try:
            kube.request("POST", collection, body, query=query)
            return "created"
        except ApiError as err:
            if err.status != 409:
                _raise(kube, f"creating {ref}", err, collection=True)
        try:
            current = kube.request("GET", f"{collection}/{meta['name']}")
        except ApiError as err:
            if err.status == 404 and not last:
                continue  # deleted meanwhile: create it
            _raise(kube, f"reading {ref}", err)
        replacement = {**body, "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}}
        try:
            kube.request("PUT", f"{collection}/{meta['name']}", replacement, query=query)
            return "replaced"
        except ApiError as err:
            if err.status not in (404, 409) or last:
                _raise(kube, f"replacing {ref}", err)
    raise AssertionError("unreachable")  # pragma: no cover


def _raise(kube: Any, what: str, err: Any, collection: bool = False) -> None:
    host = kube.client.configuration.host
    if err.status == 404 and collection:
        if 'namespaces "' in err.message:
            raise UsageError(f"{what}: {' '.join(err.message.split())[:300]}") from None
        raise UsageError(f"the API server at {host} does not serve {PLURAL}.hybridplace.io/v1alpha1: are the "
                         "hybridplace CRDs installed?") from None
    reached = "cannot reach the API server" if err.status == 0 else "the API server refused it"
    raise ApiFailure(f"{what}: {reached} at {host}: {err.status} {err.reason}: "
                     f"{' '.join(err.message.split())}"[:MAX_LINE]) from None
