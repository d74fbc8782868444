"""What the operator knows of the cluster, kept current by watch events.

Watch handlers (in kopf's event loop) write here; reconciler threads read consistent snapshots.
Everything is keyed the way reconcilers look it up, so a reconcile reads memory, not the API.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..api.builtins import builtin_digest
from ..api.models import Benchmark, HardwarePool, ModelProfile
from ..api.validate import InvalidObject, parse_object
from ..builders import names
from ..builders.jobs import benchmark_key
from .fingerprint import deployment_fingerprint, service_fingerprint
from .plan import ChildState, JobState
from .pools import NodeInfo, node_types
from .reprofile import NodeTypes

# Annotations the operator writes on the benchmark Jobs it owns, once it has read the result.
ANNOTATION_FAILURE_REASON = "hybridplace.io/failure-reason"
ANNOTATION_FAILURE_MESSAGE = "hybridplace.io/failure-message"

NsName = tuple[str, str]


def digest_of(body: dict[str, Any]) -> str | None:
    """The model digest of an InferenceDeployment body, if its model is well formed."""
    model = (body.get("spec") or {}).get("model") or {}
    try:
        if model.get("builtin"):
            return builtin_digest(model["builtin"])
    except ValueError:
        return None
    digest = model.get("digest")
    return digest if isinstance(digest, str) and digest.startswith("sha256:") else None


def job_state(body: dict[str, Any]) -> JobState:
    """A Job counts as failed only once the operator has read why (the failure annotation), so
    an InferenceDeployment reports the worker's reason, not the Job controller's."""
    status = body.get("status") or {}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    conditions = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    reason = annotations.get(ANNOTATION_FAILURE_REASON)
    # The operator writes the reason only after reading a failure: a Job that failed, or one
    # that completed without a usable result.
    failed = reason is not None
    return JobState(
        name=body["metadata"]["name"],
        active=not conditions & {"Complete", "Failed"},
        succeeded="Complete" in conditions,
        failed=failed,
        reason=reason if failed else None,
        message=annotations.get(ANNOTATION_FAILURE_MESSAGE) if failed else None,
        uid=(body.get("metadata") or {}).get("uid"),
        recorded=annotations.get(names.ANNOTATION_RECORDED),
    )


def benchmark_key_of(body: dict[str, Any]) -> str | None:
    """The benchmark key (builders.jobs.benchmark_key) of an InferenceDeployment body, if its
    benchmark settings are well formed."""
    spec = body.get("spec") or {}
    try:
        benchmark = Benchmark.model_validate(spec.get("benchmark") or {})
    except ValidationError:
        return None
    image = (spec.get("serving") or {}).get("image")
    return benchmark_key(benchmark, image if isinstance(image, str) else None)


def _type_of(node: NodeInfo) -> tuple[Any, ...]:
    """What of a node the pools' node types depend on: readiness and labels."""
    return (node.ready, node.unschedulable, tuple(sorted(node.labels.items())))


def _measured_at(profile: ModelProfile) -> datetime:
    try:
        found = datetime.fromisoformat(str(profile.spec.measured_at))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def newest_profile(profiles: dict[str, ModelProfile]) -> ModelProfile:
    """Of several profiles for one digest and pool (keyed by name), the one to use: the newest
    measuredAt, then the greatest name (a profile without measuredAt counts as oldest)."""
    return max(profiles.values(), key=lambda p: (_measured_at(p), p.metadata.name or ""))


def _version(body: dict[str, Any]) -> int:
    """resourceVersion as a number, to order versions of one object. Opaque by contract, it is
    etcd's revision in every Kubernetes release; anything else sorts first and is replaced."""
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _slim(body: dict[str, Any]) -> dict[str, Any]:
    """The body without what the operator never reads but can be large (managedFields, the
    last-applied annotation): memory matters with thousands of objects."""
    meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and "kubectl.kubernetes.io/last-applied-configuration" in annotations:
        meta["annotations"] = {
            k: v for k, v in annotations.items() if k != "kubectl.kubernetes.io/last-applied-configuration"
        }
    return {**body, "metadata": meta}


@dataclass(frozen=True)
class PoolEntry:
    generation: int | None
    pool: HardwarePool | None  # None when the object does not parse
    error: str | None = None
    status: dict[str, Any] | None = None  # as stored, kept only when the object does not parse


class ClusterState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.infds: dict[NsName, dict[str, Any]] = {}
        self._infd_digest: dict[NsName, str | None] = {}
        # The benchmark key of each InferenceDeployment, and how many of a (namespace, digest) ask
        # for each key: a profile measured with a key some deployment of its model asks for is current.
        self._infd_key: dict[NsName, tuple[str, str | None, str | None]] = {}
        self._keys: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self._node_types: dict[str, NodeTypes] | None = None  # by pool; None: to be computed again
        self.pools: dict[str, PoolEntry] = {}
        self.nodes: dict[str, NodeInfo] = {}
        # (namespace, digest) -> pool -> profile name -> profile: every object, so deleting a
        # duplicate never forgets the one that remains.
        self._profiles: dict[tuple[str, str], dict[str, dict[str, ModelProfile]]] = defaultdict(
            lambda: defaultdict(dict))
        self._profile_keys: dict[NsName, tuple[str, str, str]] = {}
        self.profile_bodies: dict[NsName, dict[str, Any]] = {}
        self.profile_errors: dict[NsName, str | None] = {}  # why a profile does not parse
        self._jobs: dict[tuple[str, str, str], JobState] = {}
        self._job_keys: dict[NsName, tuple[str, str, str]] = {}
        # (the child, its controller's uid, whether that controller is an InferenceDeployment of its name)
        self._children: dict[NsName, dict[str, tuple[ChildState, str | None, bool]]] = defaultdict(dict)
        self._child_keys: dict[NsName, tuple[NsName, str, int]] = {}
        self._child_versions: dict[NsName, int] = {}
        self._services: dict[NsName, set[str]] = defaultdict(set)
        # Every cached object by kind and key, with the resourceVersion last seen: a re-list
        # replaces the cached set (the informer contract), so what it no longer lists is dropped.
        self._seen: dict[str, dict[Any, int]] = defaultdict(dict)
        self._service_instances: dict[NsName, str] = {}
        self._service_fingerprints: dict[NsName, str] = {}
        self._service_owners: dict[NsName, tuple[str | None, str | None]] = {}  # (controller uid, uid)

    # -- updates from watch events (return what the change affects) -------------------------

    def put_infd(self, body: dict[str, Any]) -> None:
        """Record the newest version of an InferenceDeployment (an older one is ignored: the
        operator stores its own writes' results before their watch events arrive)."""
        body = _slim(body)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with self._lock:
            old = self.infds.get(key)
            if old is not None and _version(old) > _version(body):
                return
            self.infds[key] = body
            self._infd_digest[key] = digest_of(body)
            self._seen["InferenceDeployment"][key] = _version(body)
            self._unindex_key(key)
            found = (key[0], self._infd_digest[key], benchmark_key_of(body))
            self._infd_key[key] = found
            if found[1] and found[2]:
                counts = self._keys[(key[0], found[1])]
                counts[found[2]] = counts.get(found[2], 0) + 1

    def _unindex_key(self, key: NsName) -> None:
        old = self._infd_key.pop(key, None)
        if old is None or not old[1] or not old[2]:
            return
        counts = self._keys[(old[0], old[1])]
        counts[old[2]] -= 1
        if counts[old[2]] <= 0:
            del counts[old[2]]
        if not counts:
            del self._keys[(old[0], old[1])]

    def benchmark_keys(self, namespace: str, digest: str) -> frozenset[str]:
        """The benchmark keys the InferenceDeployments of `digest` in `namespace` ask for."""
        with self._lock:
            return frozenset(self._keys.get((namespace, digest), {}))

    def drop_infd(self, namespace: str, name: str) -> None:
        with self._lock:
            self.infds.pop((namespace, name), None)
            self._infd_digest.pop((namespace, name), None)
            self._unindex_key((namespace, name))
            self._seen["InferenceDeployment"].pop((namespace, name), None)

    def infds_with(self, namespace: str, digest: str) -> list[NsName]:
        with self._lock:
            return [k for k, d in self._infd_digest.items() if k[0] == namespace and d == digest]

    def all_infds(self) -> list[NsName]:
        with self._lock:
            return list(self.infds)

    def put_pool(self, body: dict[str, Any]) -> bool:
        """Record a pool; True when its spec changed (or it is new), so decisions may change."""
        name = body["metadata"]["name"]
        generation = body["metadata"].get("generation")
        try:
            entry = PoolEntry(generation, parse_object(body, stored=True))  # type: ignore[arg-type]
        except InvalidObject as err:
            entry = PoolEntry(generation, None, str(err), body.get("status") or {})
        with self._lock:
            old = self.pools.get(name)
            self.pools[name] = entry
            self._seen["HardwarePool"][name] = _version(body)
            self._node_types = None
        return old is None or old.generation != generation or (old.pool is None) != (entry.pool is None)

    def pool_names(self) -> list[str]:
        with self._lock:
            return list(self.pools)

    def drop_pool(self, name: str) -> None:
        with self._lock:
            self.pools.pop(name, None)
            self._seen["HardwarePool"].pop(name, None)
            self._node_types = None

    def node_types(self) -> dict[str, NodeTypes]:
        """The instance types and GPU products of each pool's ready nodes (computed again only
        after a node's type or readiness, or a pool, changed)."""
        with self._lock:
            if self._node_types is None:
                nodes = list(self.nodes.values())
                self._node_types = {name: NodeTypes(*node_types(e.pool, nodes))
                                    for name, e in self.pools.items() if e.pool is not None}
            return self._node_types

    def put_node(self, body: dict[str, Any]) -> bool:
        """Record a node; True when its readiness or labels changed (new, or its type may have)."""
        node = NodeInfo.from_body(body)
        with self._lock:
            before = self.nodes.get(node.name)
            self.nodes[node.name] = node
            self._seen["Node"][node.name] = _version(body)
            changed = before is None or _type_of(before) != _type_of(node)
            if changed:
                self._node_types = None
        return changed

    def drop_node(self, name: str) -> None:
        with self._lock:
            self.nodes.pop(name, None)
            self._seen["Node"].pop(name, None)
            self._node_types = None

    def put_profile(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """Record a profile (replacing what was known of it, in one step, so a reconcile never
        sees it missing); returns its (namespace, digest), or None if it does not parse. Why it
        does not parse is kept for its status (`profile_errors`)."""
        meta = body["metadata"]
        ref = (meta["namespace"], meta["name"])
        try:
            profile = parse_object(body, stored=True)
            error = None
        except InvalidObject as err:
            profile, error = None, str(err)
        with self._lock:
            seen = self._seen["ModelProfile"].get(ref)
            if seen is not None and seen > _version(body):
                # An older version than one already recorded (the operator stores the profile it
                # writes before that write's watch event comes): keep the newer.
                found = self._profile_keys.get(ref)
                return (found[0], found[1]) if found else None
            self._drop_profile(*ref)
            self.profile_bodies[ref] = _slim(body)
            self._seen["ModelProfile"][ref] = _version(body)
            self.profile_errors[ref] = error
            if profile is None:
                return None
            assert isinstance(profile, ModelProfile)
            key = (meta["namespace"], profile.spec.model.digest)
            self._profiles[key][profile.spec.pool][meta["name"]] = profile
            self._profile_keys[ref] = (*key, profile.spec.pool)
        return key

    def drop_profile(self, namespace: str, name: str) -> tuple[str, str] | None:
        with self._lock:
            return self._drop_profile(namespace, name)

    def _drop_profile(self, namespace: str, name: str) -> tuple[str, str] | None:
        self.profile_bodies.pop((namespace, name), None)
        self.profile_errors.pop((namespace, name), None)
        self._seen["ModelProfile"].pop((namespace, name), None)
        found = self._profile_keys.pop((namespace, name), None)
        if found is None:
            return None
        ns, digest, pool = found
        by_pool = self._profiles[(ns, digest)]
        by_pool[pool].pop(name, None)
        if not by_pool[pool]:
            del by_pool[pool]
        return ns, digest

    def put_job(self, body: dict[str, Any]) -> tuple[str, str] | None:
        meta = body["metadata"]
        digest = (meta.get("annotations") or {}).get(names.ANNOTATION_DIGEST)
        pool = (meta.get("labels") or {}).get(names.LABEL_POOL)
        if not digest or not pool:
            return None
        with self._lock:
            if self._seen["Job"].get((meta["namespace"], meta["name"]), -1) > _version(body):
                # An older version than one recorded: a Job deleted and made again under the
                # same name (its pool measured again) is the new one from then on.
                return meta["namespace"], digest
            self._jobs[(meta["namespace"], digest, pool)] = job_state(body)
            self._job_keys[(meta["namespace"], meta["name"])] = (meta["namespace"], digest, pool)
            self._seen["Job"][(meta["namespace"], meta["name"])] = _version(body)
        return meta["namespace"], digest

    def drop_job(self, namespace: str, name: str, uid: str | None = None) -> tuple[str, str] | None:
        """Forget a Job; with `uid` (a deletion a watch reported), only that very Job, not a
        new one of the same name the operator made since."""
        with self._lock:
            found = self._job_keys.get((namespace, name))
            if found is not None and uid is not None and self._jobs.get(found) is not None \
                    and self._jobs[found].uid not in (None, uid):
                return None
            self._job_keys.pop((namespace, name), None)
            self._seen["Job"].pop((namespace, name), None)
            if found is None:
                return None
            self._jobs.pop(found, None)
            return found[0], found[1]

    def put_deployment(self, body: dict[str, Any]) -> NsName | None:
        """Record a serving Deployment; returns its InferenceDeployment's key."""
        meta = body["metadata"]
        labels = meta.get("labels") or {}
        instance, pool = labels.get(names.LABEL_INSTANCE), labels.get(names.LABEL_POOL)
        if not instance or not pool or meta.get("name") != names.serving_name(instance, pool):
            return None  # not one the operator makes (it names each so): it must not displace one
        owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), {})
        key = (meta["namespace"], instance)
        status = body.get("status") or {}
        replicas = (body.get("spec") or {}).get("replicas", 1)
        generation, observed = meta.get("generation"), status.get("observedGeneration")
        rolled_out = ((generation is None or (observed is not None and observed >= generation))
                      and (status.get("updatedReplicas") or 0) >= replicas
                      and (status.get("replicas") or 0) <= replicas)
        child = ChildState(
            name=meta["name"], pool=pool, fingerprint=deployment_fingerprint(body), replicas=replicas,
            available_replicas=status.get("availableReplicas", 0) or 0, owned=False,
            applied_fingerprint=(meta.get("annotations") or {}).get(names.ANNOTATION_FINGERPRINT),
            rolled_out=rolled_out, uid=meta.get("uid"),
        )
        with self._lock:
            if self._child_versions.get((meta["namespace"], meta["name"]), -1) > _version(body):
                return key  # an older event than the operator's own write: keep the newer
            self._child_versions[(meta["namespace"], meta["name"])] = _version(body)
            self._seen["Deployment"][(meta["namespace"], meta["name"])] = _version(body)
            self._children[key][pool] = (child, owner.get("uid"),
                                         owner.get("kind") == "InferenceDeployment" and owner.get("name") == instance)
            self._child_keys[(meta["namespace"], meta["name"])] = (key, pool, replicas)
        return key

    def drop_deployment(self, namespace: str, name: str) -> NsName | None:
        with self._lock:
            found = self._child_keys.pop((namespace, name), None)
            self._child_versions.pop((namespace, name), None)
            self._seen["Deployment"].pop((namespace, name), None)
            if found is None:
                return None
            key, pool, _ = found
            self._children[key].pop(pool, None)
            if not self._children[key]:
                del self._children[key]
            return key

    def put_service(self, body: dict[str, Any], deleted: bool = False) -> NsName | None:
        meta = body["metadata"]
        instance = (meta.get("labels") or {}).get(names.LABEL_INSTANCE)
        if not instance:
            return None
        key = (meta["namespace"], instance)
        with self._lock:
            if deleted:
                self._services[key].discard(meta["name"])
                self._seen["Service"].pop((meta["namespace"], meta["name"]), None)
                self._service_instances.pop((meta["namespace"], meta["name"]), None)
                self._service_fingerprints.pop((meta["namespace"], meta["name"]), None)
                self._service_owners.pop((meta["namespace"], meta["name"]), None)
                if not self._services[key]:
                    del self._services[key]
            else:
                self._services[key].add(meta["name"])
                self._seen["Service"][(meta["namespace"], meta["name"])] = _version(body)
                self._service_instances[(meta["namespace"], meta["name"])] = instance
                owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), {})
                self._service_owners[(meta["namespace"], meta["name"])] = (owner.get("uid"), meta.get("uid"))
                if "spec" in body:
                    self._service_fingerprints[(meta["namespace"], meta["name"])] = service_fingerprint(body)
        return key

    def drop_service(self, namespace: str, name: str) -> NsName | None:
        with self._lock:
            instance = self._service_instances.get((namespace, name))
        if instance is None:
            return None
        return self.put_service({"metadata": {"namespace": namespace, "name": name,
                                              "labels": {names.LABEL_INSTANCE: instance}}}, deleted=True)

    # -- re-lists ----------------------------------------------------------------------------

    def seen_version(self, kind: str, key: Any) -> int | None:
        with self._lock:
            return self._seen[kind].get(key)

    def stale(self, kind: str, listed: set[Any], list_version: int) -> list[Any]:
        """Cached keys of `kind` that a list at `list_version` did not return: deleted while no
        watch event said so. Ones seen at a newer version than the list are kept."""
        with self._lock:
            return [k for k, v in self._seen[kind].items() if k not in listed and v <= list_version]

    # -- reads for reconcilers ---------------------------------------------------------------

    def infd_bodies(self) -> list[dict[str, Any]]:
        """Every InferenceDeployment as last seen (status included), for /metrics."""
        with self._lock:
            return list(self.infds.values())

    def job_counts(self) -> dict[tuple[str, str], int]:
        """Benchmark Jobs by (pool, state): running, finished (not read yet), succeeded, failed."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        with self._lock:
            for (_, _, pool), job in self._jobs.items():
                state = "running" if job.active else "failed" if job.failed else \
                    "succeeded" if job.succeeded else "finished"
                counts[(pool, state)] += 1
        return dict(counts)

    def profile_ages(self, now: float) -> dict[str, tuple[float, float, int]]:
        """Per pool: the age of its oldest and newest ModelProfile (seconds since measuredAt, at
        `now`, a Unix time) and how many there are; profiles without measuredAt are left out."""
        ages: dict[str, list[float]] = defaultdict(list)
        with self._lock:
            for by_pool in self._profiles.values():
                for pool, named in by_pool.items():
                    for profile in named.values():
                        measured = _measured_at(profile)
                        if measured.year > 1:
                            ages[pool].append(max(0.0, now - measured.timestamp()))
        return {pool: (max(found), min(found), len(found)) for pool, found in ages.items()}

    def pool_objects(self) -> dict[str, HardwarePool]:
        with self._lock:
            return {n: e.pool for n, e in self.pools.items() if e.pool is not None}

    def pool_errors(self) -> dict[str, str]:
        """Why each pool that does not parse cannot be used."""
        with self._lock:
            return {n: e.error or "invalid" for n, e in self.pools.items() if e.pool is None}

    def profiles_for(self, namespace: str, digest: str) -> dict[str, ModelProfile]:
        """The profile used for each pool: of several for one digest and pool, the newest
        measuredAt (then the greatest name), whatever order they came in."""
        with self._lock:
            return {pool: newest_profile(found) for pool, found in self._profiles.get((namespace, digest), {}).items()}

    def duplicate_profiles(self, namespace: str, digest: str) -> dict[str, list[str]]:
        """Pools with more than one profile for `digest`: their names, the one used first."""
        with self._lock:
            by_pool = self._profiles.get((namespace, digest), {})
            return {pool: [newest_profile(found).metadata.name or ""]
                    + sorted(n for n in found if n != newest_profile(found).metadata.name)
                    for pool, found in by_pool.items() if len(found) > 1}

    def profile_names(self, namespace: str, digest: str) -> list[str]:
        with self._lock:
            return sorted(n for found in self._profiles.get((namespace, digest), {}).values() for n in found)

    def profile_superseded_by(self, namespace: str, name: str) -> str | None:
        """The name of the profile used instead of this one (same digest and pool), if any."""
        with self._lock:
            found = self._profile_keys.get((namespace, name))
            if found is None:
                return None
            ns, digest, pool = found
            used = newest_profile(self._profiles[(ns, digest)][pool]).metadata.name
            return None if used == name else used

    def jobs_for(self, namespace: str, digest: str) -> dict[str, JobState]:
        with self._lock:
            return {pool: s for (ns, d, pool), s in self._jobs.items() if ns == namespace and d == digest}

    def children_of(self, namespace: str, name: str) -> dict[str, ChildState]:
        """The serving Deployments labelled for this InferenceDeployment; `owned` when it is
        their controller (same uid), decided now, whatever order the watch events came in."""
        with self._lock:
            infd = self.infds.get((namespace, name))
            uid = infd["metadata"].get("uid") if infd else None
            return {
                pool: dataclasses.replace(child, owned=uid is not None and owner == uid,
                                          earlier=named and owner is not None and uid is not None and owner != uid)
                for pool, (child, owner, named) in self._children.get((namespace, name), {}).items()
            }

    def services_of(self, namespace: str, name: str) -> set[str]:
        """The Services labelled for this InferenceDeployment that it controls (same uid): a
        namesake left by an earlier object of the name (deleted with --cascade=orphan) is not
        among them, so it is neither put back nor deleted, but reported as a name conflict."""
        with self._lock:
            infd = self.infds.get((namespace, name))
            uid = infd["metadata"].get("uid") if infd else None
            return {n for n in self._services.get((namespace, name), set())
                    if uid is not None and self._service_owners.get((namespace, n), (None, None))[0] == uid}

    def service_uid(self, namespace: str, name: str) -> str | None:
        """The uid of the cached Service (a delete's precondition: that very object)."""
        with self._lock:
            return self._service_owners.get((namespace, name), (None, None))[1]

    def service_fingerprints_of(self, namespace: str, name: str) -> dict[str, str]:
        """The fingerprints of this InferenceDeployment's Services, by name."""
        with self._lock:
            return {n: self._service_fingerprints[(namespace, n)] for n in self._services.get((namespace, name), set())
                    if (namespace, n) in self._service_fingerprints}

    def node_list(self) -> list[NodeInfo]:
        with self._lock:
            return list(self.nodes.values())

    def _placed(self) -> Iterator[tuple[NsName, str, int]]:
        """(InferenceDeployment, pool, replicas) of each serving Deployment an existing
        InferenceDeployment controls (same uid); a Deployment only labelled like one (anyone
        who may create Deployments can label one) holds no room. Called under the lock."""
        for key, pool, replicas in self._child_keys.values():
            infd = self.infds.get(key)
            entry = self._children.get(key, {}).get(pool)
            if infd is not None and entry is not None and entry[1] is not None \
                    and entry[1] == infd["metadata"].get("uid"):
                yield key, pool, replicas

    def replicas_taken(self, namespace: str, name: str) -> dict[str, int]:
        """Serving replicas the *other* InferenceDeployments hold, by pool: the room on a pool
        is shared, and this one may use what is free plus its own."""
        taken: dict[str, int] = {}
        with self._lock:
            for key, pool, replicas in self._placed():
                if key != (namespace, name):
                    taken[pool] = taken.get(pool, 0) + replicas
        return taken

    def replicas_on(self, pool: str) -> int:
        """Serving replicas hybridplace placed on `pool`, over all InferenceDeployments."""
        with self._lock:
            return sum(r for _, p, r in self._placed() if p == pool)
