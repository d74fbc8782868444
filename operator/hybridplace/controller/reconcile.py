"""Reconcilers: read what is known, ask the pure planners, carry out the plan.

Keys on the work queue are ("infd", namespace, name), ("job", namespace, name) and
("pool", name). A reconciler either finishes or raises; the worker loop retries a raise with
backoff. Nothing is written when the plan matches what exists.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from queue import Full, Queue
from typing import Any

from .. import conditions as c
from ..api.fit import fit_status
from ..api.models import InferenceDeployment
from ..api.validate import InvalidObject, parse_object
from ..builders import names
from ..builders.profiles import BenchmarkFailure, build_model_profile, parse_termination_message
from ..builders.routing import backend_services, gateway_target, route_backends
from ..config import Settings
from .faults import crash_point
from .fingerprint import deployment_fingerprint, service_fingerprint, template_replacement
from .gateways import GatewayLookup
from .kube import ApiError, Kube, now_rfc3339
from .metrics import Metrics, Snapshot
from .observer import ObservationStore
from .plan import model_digest, plan_inference_deployment, status_changed, status_patch
from .pools import plan_pool_status
from .reprofile import ReprofileInputs, epoch
from .state import ANNOTATION_FAILURE_MESSAGE, ANNOTATION_FAILURE_REASON, ClusterState, PoolEntry
from .workqueue import WorkQueue

log = logging.getLogger("hybridplace")


def job_seconds(job: dict[str, Any], finished: dict[str, Any] | None) -> float | None:
    """A Job's run time, seconds: status.startTime to completionTime (or to its finishing
    condition's lastTransitionTime); None when either is missing or unreadable."""
    status = job.get("status") or {}
    end = epoch(status.get("completionTime") or (finished or {}).get("lastTransitionTime"))
    start = epoch(status.get("startTime"))
    return None if start is None or end is None else end - start


def owned_by(obj: dict[str, Any] | None, uid: str | None) -> bool:
    """Whether `obj` names the object with `uid` among its ownerReferences (ours, not a namesake)."""
    if obj is None or uid is None:
        return False
    return any(r.get("uid") == uid for r in (obj.get("metadata") or {}).get("ownerReferences") or [])


# A child of an earlier InferenceDeployment of the same name waits for the garbage collector:
# tried again this soon, not after a resync period as a namesake of someone else's is.
GC_WAIT_S = 5.0


def earlier_incarnations(obj: dict[str, Any] | None, owner: dict[str, Any]) -> bool:
    """Whether `obj` is controlled by an earlier InferenceDeployment of `owner`'s name (another
    uid). That one is gone (`owner` has the name now), so the garbage collector deletes `obj`
    shortly: `kubectl delete` then `apply`, or `replace --force`. (Deleted with
    --cascade=orphan, it would have no such reference left.)"""
    meta = owner["metadata"]
    return any(r.get("controller") and r.get("kind") == "InferenceDeployment" and r.get("name") == meta.get("name")
               and r.get("uid") != meta.get("uid") for r in ((obj or {}).get("metadata") or {}).get("ownerReferences")
               or [])


def _rv(body: dict[str, Any]) -> int:
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


@contextlib.contextmanager
def _refused_into(rejected: dict[str, str], ref: str) -> Iterator[None]:
    """Record in `rejected` a child the API server refuses for good (a 4xx: invalid, forbidden,
    a conflicting hand edit), so that the status says so instead of the reconcile failing in a
    loop; anything transient still raises, to be retried with backoff."""
    try:
        yield
    except ApiError as err:
        if err.transient or err.status in (0, 404, 409):
            raise
        rejected[ref] = f"{err.status} {err.reason}: {err.message}"


class EventPoster:
    """Posts Events from a thread of its own, as client-go's event recorder does: an Event must
    never slow a reconcile down. The queue is bounded; when the API server cannot keep up, the
    newest Events are dropped (and counted in the log) rather than memory growing.

    The thread never dies of a failure: a transient one (no answer, 429, 5xx) is tried again
    with backoff (at least the server's Retry-After) up to `attempts` times, then the Event is
    dropped and counted; anything else is logged, counted and the thread goes on."""

    def __init__(self, kube: Kube, limit: int = 10000, attempts: int = 5,
                 base_delay: float = 0.5, max_delay: float = 30.0):
        self.kube = kube
        self._queue: Queue[tuple[dict[str, Any], str, str, str] | None] = Queue(limit)
        self._attempts = attempts
        self._base = base_delay
        self._max = max_delay
        self._stopping = threading.Event()
        self.dropped = 0
        self.failures = 0  # posts that failed (each attempt), for the log and the tests
        self.posted = 0
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def post(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        try:
            self._queue.put_nowait((involved, type_, reason, message))
        except Full:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("dropped %d Events: the API server is not keeping up", self.dropped)

    def stop(self, timeout: float = 10) -> None:
        """Post what is queued (for up to `timeout` seconds), then stop."""
        with contextlib.suppress(Full):
            self._queue.put(None, timeout=timeout)
        self._stopping.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._post(item)
            except Exception:  # noqa: BLE001 - an Event is never worth the thread; logged and counted
                self.failures += 1
                log.exception("posting an Event failed; the Events thread goes on")

    def _post(self, item: tuple[dict[str, Any], str, str, str]) -> None:
        for attempt in range(self._attempts):
            error = self.kube.event(*item)
            if error is None:
                self.posted += 1
                return
            self.failures += 1
            if not error.transient or attempt == self._attempts - 1:
                break
            # At least the server's Retry-After, but never more than max_delay: the thread serves
            # every Event, and a long wait is better spent dropping this one.
            delay = min(max(self._base * 2**attempt, error.retry_after or 0.0), self._max)
            if self._stopping.wait(delay):
                break
        self.dropped += 1


class Reconciler:
    def __init__(self, kube: Kube, state: ClusterState, settings: Settings, queue: WorkQueue,
                 observations: ObservationStore | None = None, metrics: Metrics | None = None):
        self.kube = kube
        self.metrics = metrics
        self.observations = observations
        self.events = EventPoster(kube)
        self.gateways = GatewayLookup(kube, settings.gateway_cache_seconds)
        self.state = state
        self.settings = settings
        self.queue = queue
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._conflicts: dict[tuple[str, str], dict[str, float]] = {}
        self._collected: dict[tuple[str, str], set[str]] = {}
        self._conflicts_lock = threading.Lock()
        self._placing = threading.Lock()  # one InferenceDeployment at a time takes a pool's room
        self._rejected: dict[tuple[str, str], dict[str, tuple[float, str]]] = {}
        self._stats: list[float] = [0, 0.0]
        self._stats_since = time.monotonic()
        self._stats_lock = threading.Lock()
        self.errors = 0  # failed reconciles and loop iterations, for the log and the tests
        self._selectors: dict[str, str] = {}
        # Set while this replica may act: always without leader election, else while it leads.
        self.leading = threading.Event()
        self.leading.set()
        self.elector: Any = None  # a LeaderElector, when several replicas run

    # -- the worker loop ---------------------------------------------------------------------

    def prime(self, selectors: dict[str, str]) -> None:
        """Fill the state from lists before any reconcile runs (as controllers wait for their
        caches to sync), so the first decisions see every pool, profile and child. The watches
        then keep it current, and `relist` replaces it every resync period."""
        self._selectors = dict(selectors)
        for body in self.kube.list_all("Node"):
            self.state.put_node(body)
        for body in self.kube.list_all("HardwarePool"):
            self.state.put_pool(body)
        for body in self._listed("ModelProfile"):
            self.state.put_profile(body)
        for body in self._listed("Job", selectors.get("Job", "")):
            self.state.put_job(body)
        for body in self._listed("Service", selectors.get("Service", "")):
            self.state.put_service(body)
        for body in self._listed("Deployment", selectors.get("Deployment", "")):
            self.state.put_deployment(body)
        # And the InferenceDeployments (their watch queues each for a reconcile): a pool's room
        # counts the Deployments of known ones only, so without them the first decisions after a
        # restart or a failover saw the others' room as free.
        for body in self._listed("InferenceDeployment"):
            self.state.put_infd(body)

    def _listed(self, kind: str, label_selector: str = "") -> list[dict[str, Any]]:
        """Every `kind` in the watched namespaces: one list per namespace when some are set (a
        namespaced Role allows no other), else one over the cluster."""
        return self._in_scope(self.kube.list_all(kind, label_selector, self.settings.namespaces))

    def _in_scope(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Objects of the namespaces the operator watches (all, when none is set)."""
        namespaces = set(self.settings.namespaces)
        if not namespaces:
            return items
        return [i for i in items if i["metadata"].get("namespace") in namespaces | {None}]

    def start(self) -> None:
        self.events.start()
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        resync = threading.Thread(target=self._resync, name="resync", daemon=True)
        resync.start()
        self._threads.append(resync)

    def stop(self) -> None:
        self._stop.set()
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)
        self.events.stop()

    def _work(self) -> None:
        while True:
            while not self.leading.wait(timeout=1.0):  # a standby replica only watches
                if self._stop.is_set():
                    return
            key = self.queue.get()
            if key is None:
                return
            if not self.leading.is_set():  # lost the lease while waiting: leave the key for later
                self.queue.done(key)
                self.queue.add_after(key, 1.0)
                continue
            started = time.monotonic()
            failed = False
            try:
                self.reconcile(key)
                self.queue.forget(key)
            except Exception as err:  # noqa: BLE001 - any failure is retried with backoff, never lost
                failed = True
                self.errors += 1
                delay = self.queue.retry(key, at_least=getattr(err, "retry_after", None) or 0.0)
                log.warning("reconcile %s failed (retry in %.0fs): %s", "/".join(key), delay, err,
                            exc_info=not isinstance(err, ApiError))
            finally:
                self.queue.done(key)
            try:
                seconds = time.monotonic() - started
                self._count(seconds)
                if self.metrics is not None:
                    self.metrics.reconciled(str(key[0]), seconds, failed)
            except Exception:  # noqa: BLE001 - a log line is never worth a worker
                log.exception("counting reconciles failed")

    def _count(self, seconds: float) -> None:
        """Log one line a minute while there is work: how much, how long, how much waits."""
        with self._stats_lock:
            self._stats[0] += 1
            self._stats[1] += seconds
            now = time.monotonic()
            if now - self._stats_since < 60:
                return
            count, busy = self._stats
            self._stats, self._stats_since = [0, 0.0], now
        calls = ", ".join(f"{k} {v}" for k, v in self.kube.take_calls().most_common(8))
        log.info("reconciled %d keys in the last minute, %.0f ms each on average; %d waiting; API calls: %s",
                 count, 1000 * busy / max(count, 1), len(self.queue), calls)

    # What a re-list replaces, and how: (kind, key of a body, drop a key -> what to reconcile).
    def _relist_kinds(self) -> list[tuple[str, Any, Any]]:
        state, ns_name = self.state, lambda b: (b["metadata"].get("namespace"), b["metadata"]["name"])
        return [
            ("Node", lambda b: b["metadata"]["name"], lambda k: state.drop_node(k) or None),
            ("HardwarePool", lambda b: b["metadata"]["name"], lambda k: state.drop_pool(k) or "all"),
            ("ModelProfile", ns_name, lambda k: state.drop_profile(*k)),
            ("Job", ns_name, lambda k: state.drop_job(*k)),
            ("Service", ns_name, lambda k: state.drop_service(*k)),
            ("Deployment", ns_name, lambda k: state.drop_deployment(*k)),
            ("InferenceDeployment", ns_name, lambda k: state.drop_infd(*k) or None),
        ]

    def relist(self) -> int:
        """List every kind again and replace the cached set, as an informer's re-list does:
        objects deleted while no watch event said so (around an API-server restart) are dropped
        and what depended on them is reconciled; objects missed are added. Returns how many
        were dropped."""
        put = {"Node": self.state.put_node, "HardwarePool": self.state.put_pool,
               "ModelProfile": self.state.put_profile, "Job": self.state.put_job,
               "Service": self.state.put_service, "Deployment": self.state.put_deployment,
               "InferenceDeployment": self.state.put_infd}
        dropped = 0
        for kind, key_of, drop in self._relist_kinds():
            items, version = self.kube.list_all_versioned(kind, self._selectors.get(kind, ""),
                                                            self.settings.namespaces)
            items = self._in_scope(items)
            listed = set()
            for item in items:
                key = key_of(item)
                listed.add(key)
                seen = self.state.seen_version(kind, key)
                if seen is None or seen < _rv(item):
                    put[kind](item)
                    if kind == "InferenceDeployment":
                        self.queue.add(("infd", *key))
            for key in self.state.stale(kind, listed, version):
                dropped += 1
                affected = drop(key)
                log.info("%s %s is gone (found by a re-list, not by a watch event)", kind, "/".join(
                    key) if isinstance(key, tuple) else key)
                if affected == "all":
                    for ns, name in self.state.all_infds():
                        self.queue.add(("infd", ns, name))
                elif kind in ("ModelProfile", "Job") and affected is not None:
                    for ns, name in self.state.infds_with(*affected):
                        self.queue.add(("infd", ns, name))
                elif affected is not None:
                    self.queue.add(("infd", *affected))
        return dropped

    def _resync(self) -> None:
        """Every resync period, re-list everything (deletions no watch event reported are found
        here), then look at everything once more, spread over the period. A failure is logged
        and counted; the loop goes on at the next period."""
        period = self.settings.resync_seconds
        while not self._stop.wait(period):
            if not self.leading.is_set():
                continue
            try:
                self.relist()
            except Exception as err:  # noqa: BLE001 - the resync must outlive any one failure
                self.errors += 1
                log.warning("re-list failed (trying again in %.0fs): %s", period, err,
                            exc_info=not isinstance(err, ApiError))
            try:
                for ns, name in self.state.all_infds():
                    self.queue.add_after(("infd", ns, name), random.uniform(0, period / 2))
                for name in self.state.pool_names():
                    self.queue.add_after(("pool", name), random.uniform(0, period / 2))
            except Exception:  # noqa: BLE001 - the resync must outlive any one failure
                self.errors += 1
                log.exception("resync failed; trying again in %.0fs", period)

    def snapshot(self) -> Snapshot:
        """What /metrics shows of the operator's state, read at scrape time."""
        return Snapshot(queue_depth=len(self.queue), events_dropped=self.events.dropped,
                        events_posted=self.events.posted, leading=self.leading.is_set(),
                        jobs=self.state.job_counts(), profile_ages=self.state.profile_ages(time.time()),
                        infds=self.state.infd_bodies())

    def health(self, stall_seconds: float) -> list[str]:
        """What is wrong with the background work, for the liveness probe: a dead reconcile
        worker or resync thread, a dead Events thread, or a queue with work due that made no
        progress for `stall_seconds`. Empty when healthy."""
        if self._stop.is_set():
            return []
        problems = [f"thread {t.name} is dead" for t in self._threads if not t.is_alive()]
        if not self.events.alive():
            problems.append("the Events thread is dead")
        if self.elector is not None and not self.elector.alive():
            problems.append("the leader-election thread is dead")
        idle = self.queue.stalled_for() if self.leading.is_set() else 0.0  # a standby waits by design
        if idle > stall_seconds:
            problems.append(f"the work queue has had work due and made no progress for {idle:.0f}s")
        return problems

    def reconcile(self, key: tuple[str, ...]) -> None:
        kind = key[0]
        if kind == "infd":
            self.reconcile_inference_deployment(key[1], key[2])
        elif kind == "job":
            self.record_benchmark(key[1], key[2])
        elif kind == "pool":
            self.reconcile_pool(key[1])
        elif kind == "profile":
            self.reconcile_profile(key[1], key[2])

    # -- InferenceDeployment -----------------------------------------------------------------

    def reconcile_inference_deployment(self, namespace: str, name: str) -> None:
        body = self.state.infds.get((namespace, name))
        # Deleted, or being deleted (a foreground deletion keeps the object while the garbage
        # collector removes its children, and each removal queues it again): garbage collection
        # removes the children; creating them again would fight it and start serving pods for
        # an object on its way out. What was remembered of it goes too.
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            with self._conflicts_lock:
                self._conflicts.pop((namespace, name), None)
                self._collected.pop((namespace, name), None)
                self._rejected.pop((namespace, name), None)
            return
        try:
            infd = parse_object(body, stored=True)
        except InvalidObject as err:
            self._report_invalid(body, err)
            return
        assert isinstance(infd, InferenceDeployment)
        digest = model_digest(infd)
        # A pool's room is shared: from reading what the others hold to recording what this one
        # takes, one InferenceDeployment at a time, so two scale-ups never both take the last
        # room (docs/placement.md, "Shared capacity"). Planning is cached and cheap; the lock is
        # held for this deployment's few API calls.
        with self._placing:
            self._reconcile_planned(body, infd, namespace, name, digest)

    def _reconcile_planned(self, body: dict[str, Any], infd: InferenceDeployment, namespace: str, name: str,
                           digest: str) -> None:
        target, source = gateway_target(infd, self.settings.default_gateway)
        routing = self.gateways.routing(target, source)
        blocked, collected = self._blocked(namespace, name)
        plan = plan_inference_deployment(
            infd,
            pools=self.state.pool_objects(),
            profiles=self.state.profiles_for(namespace, digest),
            jobs=self.state.jobs_for(namespace, digest),
            children=self.state.children_of(namespace, name),
            service_names=self.state.services_of(namespace, name),
            settings=self.settings,
            now=now_rfc3339(),
            fingerprint=deployment_fingerprint,
            blocked=blocked,
            collected=collected,
            observed=self.observations.get((namespace, name)) if self.observations is not None else None,
            pool_errors=self.state.pool_errors(),
            rejected=self._rejections(namespace, name),
            duplicate_profiles=self.state.duplicate_profiles(namespace, digest),
            service_fingerprints=self.state.service_fingerprints_of(namespace, name),
            service_fingerprint=service_fingerprint,
            taken=self.state.replicas_taken(namespace, name),
            reprofile=ReprofileInputs(wanted_keys=self.state.benchmark_keys(namespace, digest),
                                      node_types=self.state.node_types()),
            routing=routing,
        )
        announce = {e.job: e for e in plan.events if e.job is not None}
        for job_name, uid in plan.jobs_to_delete:
            # A finished Job whose pool is measured again (its profile aged, changed or was
            # deleted): only that very Job (uid), in the background, then a new one of the name.
            self.kube.delete("Job", namespace, job_name, uid=uid)
            self.state.drop_job(namespace, job_name)
        deleted = {n for n, _ in plan.jobs_to_delete}
        conflicts: list[str] = []
        collected: set[str] = set()  # of those, children of an earlier namesake: the collector deletes them
        rejected: dict[str, str] = {}
        for job in plan.jobs_to_create:
            # None: it exists already (the watch had not brought it yet) and was announced then.
            # Announced at once, so a later failure of this reconcile cannot lose the Event.
            # Refused for good (a pool no pod may match): its pool says so (plan._refused_jobs).
            with _refused_into(rejected, f"Job/{job['metadata']['name']}"):
                if (created := self.kube.create(job)) is not None:
                    self.state.put_job({**created, "kind": "Job"})
                    if (event := announce.get(job["metadata"]["name"])) is not None:
                        self.events.post(body, event.type, event.reason, event.message)
                elif job["metadata"]["name"] in deleted:  # the one deleted is not gone yet: again shortly
                    self.queue.add_after(("infd", namespace, name), 1.0)
        if plan.recheck_after is not None:  # a profile gets too old then: measure it again at once
            self.queue.add_after(("infd", namespace, name), plan.recheck_after + 1.0)
        children = self.state.children_of(namespace, name)
        for deployment in plan.deployments:
            ref = f"Deployment/{deployment['metadata']['name']}"
            with _refused_into(rejected, ref):
                if any(x.name == deployment["metadata"]["name"] for x in children.values()):
                    self.state.put_deployment(self._converge(deployment))  # ours: converge
                elif (created := self._create_or_adopt(body, deployment, collected)) is not None:
                    self.state.put_deployment(created)
                    crash_point("children-half-created")
                else:
                    conflicts.append(ref)
        for service in plan.services:
            ref = f"Service/{service['metadata']['name']}"
            with _refused_into(rejected, ref):
                if (created := self._create_or_adopt(body, service, collected)) is not None:
                    self.state.put_service(created)
                else:
                    conflicts.append(ref)
        for service in plan.services_to_apply:
            with _refused_into(rejected, f"Service/{service['metadata']['name']}"):
                self.state.put_service({**self.kube.apply(service), "kind": "Service"})
        if plan.route is not None and not (backend_services(plan.route) & ({*conflicts} | rejected.keys())):
            # (a backend Service found taken or refused just now: no route to it; planned again below)
            ref = f"HTTPRoute/{plan.route['metadata']['name']}"
            with _refused_into(rejected, ref):
                if not self._converge_route(body, plan.route, collected):
                    conflicts.append(ref)
        if conflicts or rejected:  # plan again at once, with them left out and reported
            self._note_conflicts(namespace, name, conflicts, collected)
            self._note_rejected(namespace, name, rejected)
            self.queue.add(("infd", namespace, name))
            return
        children = self.state.children_of(namespace, name)
        for stale in plan.stale_deployments:
            child = next((x for x in children.values() if x.name == stale), None)
            if child is not None and child.owned:  # that very one (uid), as for Services and Jobs
                self.kube.delete("Deployment", namespace, stale, uid=child.uid)
        if plan.stale_route is not None:
            self._delete_route(body, namespace, plan.stale_route)
        for stale in plan.stale_services:  # ours (services_of), that very one (uid)
            self.kube.delete("Service", namespace, stale, uid=self.state.service_uid(namespace, stale))
        stored = body.get("status") or {}
        if status_changed(plan.status, stored):
            self.state.put_infd(self.kube.patch_status("InferenceDeployment", namespace, name,
                                                       status_patch(plan.status, stored)))
        for event in plan.events:
            if event.job is None:
                self.events.post(body, event.type, event.reason, event.message)

    def _converge_route(self, owner: dict[str, Any], route: dict[str, Any],
                        collected: set[str] | None = None) -> bool:
        """Create the split's HTTPRoute, or put its parents and weights right (one GET: a route
        is only wanted while a split lasts, so it is not watched). False when the name is taken
        by an HTTPRoute that is not ours (left untouched). A 404 (the Gateway API CRDs went
        away) makes the lookup ask again and the reconcile retry."""
        meta = route["metadata"]
        try:
            found = self.kube.get("HTTPRoute", meta["namespace"], meta["name"])
            if found is None:
                return self._create_or_adopt(owner, route, collected) is not None
        except ApiError as err:
            if err.status == 404:
                self.gateways.forget()
            raise
        if not owned_by(found, owner["metadata"].get("uid")):
            if collected is not None and earlier_incarnations(found, owner):
                collected.add(f"HTTPRoute/{meta['name']}")
            return False
        if route_backends(found) != route_backends(route):
            self.kube.apply(route)  # weights follow the decision
        return True

    def _delete_route(self, owner: dict[str, Any], namespace: str, name: str) -> None:
        """Delete the HTTPRoute of a split that ended: only ours (by uid), never a namesake."""
        found = self.kube.get("HTTPRoute", namespace, name)
        if owned_by(found, owner["metadata"].get("uid")):
            self.kube.delete("HTTPRoute", namespace, name, uid=found["metadata"].get("uid"))

    def _converge(self, deployment: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a child of ours; when what another manager added survives it
        (apply never removes others' fields), the pod template is replaced by a merge patch."""
        applied = {**self.kube.apply(deployment), "kind": "Deployment"}
        if deployment_fingerprint(applied) == deployment_fingerprint(deployment):
            return applied
        meta = deployment["metadata"]
        return {**self.kube.merge_patch("Deployment", meta["namespace"], meta["name"],
                                        template_replacement(deployment, applied)), "kind": "Deployment"}

    def _create_or_adopt(self, owner: dict[str, Any], obj: dict[str, Any],
                         collected: set[str] | None = None) -> dict[str, Any] | None:
        """Create a child; if its name is taken, the existing object when it is ours, else None
        (it is someone else's and stays untouched; "Kind/name" added to `collected` when it is
        an earlier namesake's, which the garbage collector is about to delete)."""
        created = self.kube.create(obj)
        if created is not None:
            return created
        meta = obj["metadata"]
        found = self.kube.get(obj["kind"], meta["namespace"], meta["name"])
        if owned_by(found, owner["metadata"].get("uid")):
            return {**found, "kind": obj["kind"]}
        if collected is not None and earlier_incarnations(found, owner):
            collected.add(f"{obj['kind']}/{meta['name']}")
        return None

    def _note_rejected(self, namespace: str, name: str, refused: dict[str, str]) -> None:
        if not refused:
            return
        until = time.monotonic() + self.settings.resync_seconds
        with self._conflicts_lock:
            self._rejected.setdefault((namespace, name), {}).update(
                {ref: (until, message) for ref, message in refused.items()})

    def _rejections(self, namespace: str, name: str) -> dict[str, str]:
        """Children the API server refused (4xx other than 409), with its message; forgotten
        after a resync period, then tried again."""
        now = time.monotonic()
        with self._conflicts_lock:
            found = self._rejected.get((namespace, name), {})
            for ref in [r for r, (until, _) in found.items() if until < now]:
                del found[ref]
            return {ref: message for ref, (_, message) in found.items()}

    def _note_conflicts(self, namespace: str, name: str, refs: list[str], collected: set[str]) -> None:
        """Names taken: left out until the next resync period, or for GC_WAIT_S when the garbage
        collector is deleting them (an earlier namesake's), then tried again."""
        if not refs:
            return
        now = time.monotonic()
        with self._conflicts_lock:
            self._conflicts.setdefault((namespace, name), {}).update(
                {ref: now + (GC_WAIT_S if ref in collected else self.settings.resync_seconds) for ref in refs})
            self._collected.setdefault((namespace, name), set()).update(collected)
        if collected:
            self.queue.add_after(("infd", namespace, name), GC_WAIT_S + 0.5)

    def _blocked(self, namespace: str, name: str) -> tuple[frozenset[str], frozenset[str]]:
        """Names found taken by others, and of those the ones the garbage collector is deleting;
        forgotten after a resync period (GC_WAIT_S for the latter), then tried again."""
        now = time.monotonic()
        with self._conflicts_lock:
            found = self._conflicts.get((namespace, name), {})
            collected = self._collected.setdefault((namespace, name), set())
            for ref in [r for r, until in found.items() if until < now]:
                del found[ref]
                collected.discard(ref)
            return frozenset(found), frozenset(collected)

    def _report_invalid(self, body: dict[str, Any], err: InvalidObject) -> None:
        """An object the API server let through but the operator cannot use (for example an
        older CRD version): conditions say why; nothing else is touched."""
        meta = body["metadata"]
        now = now_rfc3339()
        message = "; ".join(f"{e.path}: {e.message}" for e in err.errors)[:2000]
        old = (body.get("status") or {}).get("conditions") or []
        conds = list(old)
        for type_ in (c.PROFILED, c.PLACED, c.SLO_MET, c.READY):
            conds = c.set_condition(conds, c.condition(type_, c.FALSE, c.INVALID_SPEC, message,
                                                       meta.get("generation"), now))
        conds = fit_status("InferenceDeployment", {"conditions": conds})["conditions"]
        if conds != old:
            self.kube.patch_status("InferenceDeployment", meta["namespace"], meta["name"],
                                   {"conditions": conds, "observedGeneration": meta.get("generation")})
            self.events.post(body, "Warning", c.INVALID_SPEC, message)

    def _report_invalid_pool(self, name: str, entry: PoolEntry) -> None:
        """A HardwarePool the API server let through but the operator cannot use (one stored
        before a CRD rule existed): its Ready condition says why; no InferenceDeployment uses it."""
        old = (entry.status or {}).get("conditions") or []
        message = f"this pool is not used: {entry.error}"
        conds = c.set_condition(list(old), c.condition(c.READY, c.FALSE, c.INVALID_SPEC, message,
                                                       entry.generation, now_rfc3339()))
        status = fit_status("HardwarePool", {"conditions": conds, "observedGeneration": entry.generation})
        if status["conditions"] != old:
            self.kube.patch_status("HardwarePool", None, name, status)
            involved = {"apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "metadata": {"name": name}}
            self.events.post(involved, "Warning", c.INVALID_SPEC, message)

    # -- benchmark Jobs ----------------------------------------------------------------------

    def record_benchmark(self, namespace: str, name: str) -> None:
        """A finished benchmark Job: its result becomes a ModelProfile, or its failure reason an
        annotation on the Job (which the operator owns) that InferenceDeployments then show."""
        job = self.kube.get("Job", namespace, name)
        if job is None:
            return
        annotations = job["metadata"].get("annotations") or {}
        if ANNOTATION_FAILURE_REASON in annotations:
            return  # already read
        conds = {x["type"]: x for x in (job.get("status") or {}).get("conditions") or [] if x.get("status") == "True"}
        if "Complete" not in conds and "Failed" not in conds:
            return
        if names.ANNOTATION_RECORDED in annotations:
            return  # already recorded
        pool = job["metadata"]["labels"].get(names.LABEL_POOL, "")
        pod, message = self._result_pod(namespace, name, job["metadata"].get("uid"))
        outcome = parse_termination_message(message)
        if isinstance(outcome, dict):
            node = (pod or {}).get("spec", {}).get("nodeName")
            containers = ((job.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
            node_info = self.state.nodes.get(node or "")
            outcome = build_model_profile(
                outcome, namespace=namespace, pool=pool, node=node,
                source=f"benchmark Job {namespace}/{name} on node {node}",
                benchmark_key=job["metadata"]["labels"].get(names.LABEL_BENCHMARK_KEY),
                worker_image=containers[0].get("image"),
                node_labels=node_info.labels if node_info is not None else None,
            )
        if isinstance(outcome, dict) and "Complete" in conds:
            crash_point("job-done-profile-not-written")
            self._record_profile(outcome)
            self.kube.patch_annotations("Job", namespace, name, {
                names.ANNOTATION_RECORDED: str(outcome["spec"].get("measuredAt") or "")})
            if self.metrics is not None:
                self.metrics.benchmark_finished(True, job_seconds(job, conds["Complete"]))
            return
        if isinstance(outcome, dict):
            outcome = BenchmarkFailure("BenchmarkFailed", "the Job failed after a result was written")
        if "Failed" in conds and outcome.reason in ("NoResult", "InvalidResult"):
            failed = conds["Failed"]
            outcome = BenchmarkFailure(failed.get("reason") or "BenchmarkFailed",
                                       failed.get("message") or outcome.message)
        self.kube.patch_annotations("Job", namespace, name, {
            ANNOTATION_FAILURE_REASON: outcome.reason,
            ANNOTATION_FAILURE_MESSAGE: outcome.message[:2000],
        })
        if self.metrics is not None:
            self.metrics.benchmark_finished(False, job_seconds(job, conds.get("Failed") or conds.get("Complete")))

    def _record_profile(self, profile: dict[str, Any]) -> None:
        """Write a measured profile: create it, or replace the one of that name when this one is
        newer (a pool measured again; the old one served until now). Recorded in the state at
        once, before the Job says so, so that no reconcile sees the Job recorded and the old
        profile still there."""
        created = self.kube.create(profile)
        meta = profile["metadata"]
        if created is None:
            found = self.kube.get("ModelProfile", meta["namespace"], meta["name"])
            if found is None:  # deleted in between: the next reconcile measures again
                return
            if str((found.get("spec") or {}).get("measuredAt") or "") >= str(profile["spec"].get("measuredAt") or ""):
                created = found  # already written (by another reconcile of this Job)
            else:
                # A 409 here (changed in between) fails the reconcile, to be tried again.
                created = self.kube.replace({**profile, "metadata": {
                    **meta, "resourceVersion": found["metadata"]["resourceVersion"]}})
        self.state.put_profile({**created, "kind": "ModelProfile"})

    def _result_pod(self, namespace: str, job: str, uid: str | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """The Job's most recent finished pod and its termination message (only that Job's
        pods, by owner uid: those of a deleted Job of the same name may still be there)."""
        pods = self.kube.list("Pod", namespace, f"job-name={job}")
        if uid:
            pods = [p for p in pods if owned_by(p, uid)]
        finished = []
        for pod in pods:
            for status in (pod.get("status") or {}).get("containerStatuses") or []:
                terminated = (status.get("state") or {}).get("terminated")
                if terminated:
                    finished.append((terminated.get("finishedAt") or "", pod, terminated.get("message")))
        if not finished:
            return None, None
        finished.sort(key=lambda x: x[0])
        return finished[-1][1], finished[-1][2]

    # -- ModelProfile status ----------------------------------------------------------------

    def reconcile_profile(self, namespace: str, name: str) -> None:
        """A profile's status: its point count, and whether the placement engine can use it."""
        body = self.state.profile_bodies.get((namespace, name))
        if body is None:
            return
        generation = body["metadata"].get("generation")
        old = body.get("status") or {}
        error = self.state.profile_errors.get((namespace, name))  # parsed once, when it came
        valid = (c.TRUE, "Valid", "the placement engine uses this profile") if error is None else \
            (c.FALSE, c.INVALID_SPEC, error[:2000])
        if error is None and (used := self.state.profile_superseded_by(namespace, name)) is not None:
            valid = (c.TRUE, "Superseded", f"valid, but not used: ModelProfile {used} of the same model digest "
                                           "and pool has a newer measuredAt; delete one of them")
        conds = c.set_condition(list(old.get("conditions") or []),
                                c.condition("Valid", *valid, generation, now_rfc3339()))
        status = fit_status("ModelProfile", {
            "observedGeneration": generation,
            "pointCount": len((body.get("spec") or {}).get("points") or []), "conditions": conds})
        if status != old:
            self.kube.patch_status("ModelProfile", namespace, name, status)

    # -- HardwarePool status -----------------------------------------------------------------

    def reconcile_pool(self, name: str) -> None:
        entry = self.state.pools.get(name)
        if entry is None:
            return
        if entry.pool is None:
            self._report_invalid_pool(name, entry)
            return
        pool = entry.pool
        status = plan_pool_status(pool, self.state.node_list(), self.state.replicas_on(name), now_rfc3339())
        old = pool.status.to_dict() if pool.status else {}
        if status != old:
            self.state.put_pool(self.kube.patch_status("HardwarePool", None, name, status))
            ready_old = c.get_condition(old.get("conditions"), c.READY)
            ready_new = c.get_condition(status["conditions"], c.READY)
            if ready_new and (ready_old is None or ready_old["reason"] != ready_new["reason"]) \
                    and ready_new["status"] != c.TRUE:
                self.events.post(pool.to_dict(), "Warning", ready_new["reason"], ready_new["message"])
