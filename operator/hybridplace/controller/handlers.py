"""kopf handlers: thin. Watch events update the in-memory state and enqueue keys; reconciler
threads do the work (reconcile.py). Nothing here calls the API or decides anything.

Why not kopf's on.create/on.update with a timer: those store kopf's progress in annotations on
the user's InferenceDeployment and timers add a finalizer to it. Here the operator writes only
the status of what it reconciles and the children it owns, and an idle operator writes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from typing import Any

import kopf

from ..builders import names
from ..config import Settings
from .faults import armed as armed_crash_points
from .kube import ApiError, Kube, load_client
from .leader import LeaderElector
from .metrics import Metrics, StateCollector, serve
from .observe import PrometheusObserver
from .observer import ObservationLoop, ObservationStore
from .reconcile import Reconciler
from .state import ANNOTATION_FAILURE_REASON, ClusterState, job_state
from .workqueue import WorkQueue

log = logging.getLogger("hybridplace")

GROUP = "hybridplace.io"
SERVING = {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_COMPONENT: names.COMPONENT_SERVING}
BENCHMARK = {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_COMPONENT: names.COMPONENT_BENCHMARK}
# A pool's status follows Deployments and nodes; coalesce bursts into one write.
POOL_STATUS_DELAY = 2.0
# Events about HardwarePools (cluster-scoped) go to `default` in every mode: the API server
# accepts an Event whose involved object has no namespace only there (in namespaced mode the
# chart grants a Role in `default` for them; in the operator's own namespace each was refused).
CLUSTER_EVENTS_NAMESPACE = "default"


class Operator:
    """The running operator's parts, created at startup."""

    settings: Settings | None = None
    kubeconfig: str | None = None
    state: ClusterState
    queue: WorkQueue
    reconciler: Reconciler | None = None
    observer: ObservationLoop | None = None
    elector: LeaderElector | None = None
    metrics: Metrics | None = None
    metrics_server: Any = None


OPERATOR = Operator()


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """kopf's tuning, in one place.

    - No kopf progress or diff-base annotations on our objects, and no Events for log lines:
      the reconcilers write status and post their own Events, on changes only.
    - Watches of Jobs and Deployments are filtered by the API server to the operator's own,
      so a large cluster's other workloads cost nothing.
    """
    ours = settings_or_env()
    if crash_points := armed_crash_points():  # fault injection for tests; refuses unknown names
        log.warning("crash points armed (HP_CRASH_AT): %s; this operator will SIGKILL itself there",
                    ", ".join(sorted(crash_points)))
    settings.posting.enabled = False
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.watching.label_selectors["batch", "jobs"] = _selector(BENCHMARK)
    settings.watching.label_selectors["apps", "deployments"] = _selector(SERVING)
    settings.watching.label_selectors["", "services"] = _selector({names.LABEL_MANAGED_BY: names.MANAGED_BY})
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.connect_timeout = 10
    try:
        metrics = start_metrics(ours)
    except OSError as err:
        raise kopf.PermanentError(str(err)) from None
    OPERATOR.state = ClusterState()
    OPERATOR.queue = WorkQueue(base_delay=1.0, max_delay=300.0, on_wait=metrics.queue_wait.observe)
    client = load_client(OPERATOR.kubeconfig, pool_size=ours.workers + 4)
    window = f"{ours.observe_window_seconds}s"
    observations = ObservationStore(observing=bool(ours.prometheus_url), window=window)
    # This replica, in its Lease and as its Events' reportingInstance (the pod's name in a pod).
    identity = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    kube = Kube(client, instance=identity, metrics=metrics, events_namespace=CLUSTER_EVENTS_NAMESPACE)
    OPERATOR.reconciler = Reconciler(kube, OPERATOR.state, ours,
                                     OPERATOR.queue, observations, metrics=metrics)
    try:
        OPERATOR.reconciler.prime({"Job": _selector(BENCHMARK), "Deployment": _selector(SERVING),
                                   "Service": _selector({names.LABEL_MANAGED_BY: names.MANAGED_BY})})
    except ApiError as err:
        if not err.transient:
            raise
        # An API server still starting ("storage is (re)initializing", 429) or gone for a moment:
        # kopf runs this startup again after the delay, with no traceback.
        raise kopf.TemporaryError(f"listing before start: {err}", delay=max(1.0, err.retry_after or 2.0)) from None
    if ours.leader_election_namespace:  # several replicas: only the Lease holder reconciles
        OPERATOR.elector = LeaderElector(Kube(client, metrics=metrics), ours.leader_election_namespace, identity,
                                         name=ours.leader_election_name)
        OPERATOR.reconciler.leading = OPERATOR.elector.leading
        OPERATOR.reconciler.elector = OPERATOR.elector
        OPERATOR.elector.start()
    OPERATOR.reconciler.start()
    if ours.prometheus_url:
        OPERATOR.observer = ObservationLoop(
            PrometheusObserver(ours.prometheus_url, ca_file=ours.prometheus_ca_file).observe_all, observations,
            lambda: dict(OPERATOR.state.infds),
            lambda key: OPERATOR.queue.add(("infd", *key)), metrics=metrics)
        OPERATOR.observer.start()
    log.info("hybridplace operator started with %d reconcile workers; Prometheus: %s", ours.workers,
             ours.prometheus_url or "none (scaling mode Operator behaves as Off)")


def start_metrics(ours: Settings) -> Metrics:
    """The operator's metrics, served on --metrics-port unless it is 0; once per process (kopf
    runs the startup handler again after a TemporaryError, and `hybridplace run` starts them
    before kopf, to refuse a taken port with one line). Raises OSError naming the flag."""
    if OPERATOR.metrics is not None:
        return OPERATOR.metrics
    metrics = Metrics()
    metrics.registry.register(StateCollector(
        lambda: OPERATOR.reconciler.snapshot() if OPERATOR.reconciler is not None else None))
    if ours.metrics_port:
        try:
            OPERATOR.metrics_server = serve(ours.metrics_port, metrics.registry)
        except OSError as err:
            raise OSError(f"--metrics-port {ours.metrics_port} (HP_METRICS_PORT): cannot listen: "
                          f"{err.strerror or err}; choose another port, or 0 to turn the metrics off") from None
        log.info("metrics on http://0.0.0.0:%d/metrics", ours.metrics_port)
    OPERATOR.metrics = metrics
    return metrics


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In a pod, the service account; elsewhere the kubeconfig `hybridplace run` was given (or
    $KUBECONFIG), read when kopf logs in rather than when a library was imported."""
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.probe(id="background", errors=kopf.ErrorsMode.PERMANENT)
def background_work_alive(**_: Any) -> str:
    """Liveness: fails (HTTP 500 on the liveness endpoint, so the kubelet restarts the pod)
    when a reconcile worker or the Events thread died, or work is due and none progressed."""
    if OPERATOR.reconciler is None:
        return "starting"
    stall_s = settings_or_env().stall_seconds
    problems = OPERATOR.reconciler.health(stall_s)
    if OPERATOR.observer is not None and not OPERATOR.observer.alive:
        problems.append("the observation thread (Prometheus) is dead")
    elif OPERATOR.observer is not None and OPERATOR.observer.stalled(stall_s):
        problems.append(f"the observation thread (Prometheus) has not finished a tick for over "
                        f"{stall_s:g} s past its time")
    if problems:
        raise kopf.PermanentError("; ".join(problems))
    return "ok"


@kopf.on.cleanup()
def stop(**_: Any) -> None:
    if OPERATOR.elector is not None:
        OPERATOR.elector.stop()  # first: a standby replica takes over once the Lease expires
    if OPERATOR.observer is not None:
        OPERATOR.observer.stop()
        OPERATOR.observer = None
    if OPERATOR.reconciler is not None:
        OPERATOR.reconciler.stop()
    if OPERATOR.metrics_server is not None:
        OPERATOR.metrics_server.shutdown()
        OPERATOR.metrics_server.server_close()
        OPERATOR.metrics_server = None
    OPERATOR.metrics = None


def settings_or_env() -> Settings:
    if OPERATOR.settings is None:
        OPERATOR.settings = Settings.from_env()
    return OPERATOR.settings


def _enqueue_infds(namespace: str, digest: str) -> None:
    for ns, name in OPERATOR.state.infds_with(namespace, digest):
        OPERATOR.queue.add(("infd", ns, name))


@kopf.on.event(GROUP, "v1alpha1", "inferencedeployments")
async def inference_deployment_event(type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        OPERATOR.state.drop_infd(namespace, name)
        return
    OPERATOR.state.put_infd(dict(body))
    OPERATOR.queue.add(("infd", namespace, name))


@kopf.on.event(GROUP, "v1alpha1", "hardwarepools")
async def hardware_pool_event(type: str | None, body: kopf.Body, name: str, **_: Any) -> None:
    if type == "DELETED":
        OPERATOR.state.drop_pool(name)
        changed = True
    else:
        changed = OPERATOR.state.put_pool(dict(body))
        OPERATOR.queue.add_after(("pool", name), 0.1)
    if changed:  # a new, deleted or edited pool may change every decision
        for ns, infd in OPERATOR.state.all_infds():
            OPERATOR.queue.add(("infd", ns, infd))


@kopf.on.event("", "v1", "nodes")
async def node_event(type: str | None, body: kopf.Body, name: str, **_: Any) -> None:
    if type == "DELETED":
        OPERATOR.state.drop_node(name)
        changed = True
    else:
        changed = OPERATOR.state.put_node(dict(body))
    if changed:  # a pool's node types may have changed: its profiles may be measured again
        for ns, infd in OPERATOR.state.all_infds():
            OPERATOR.queue.add_after(("infd", ns, infd), POOL_STATUS_DELAY)
    for pool in OPERATOR.state.pool_names():
        OPERATOR.queue.add_after(("pool", pool), POOL_STATUS_DELAY)


@kopf.on.event(GROUP, "v1alpha1", "modelprofiles")
async def model_profile_event(type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        key = OPERATOR.state.drop_profile(namespace, name)
    else:
        key = OPERATOR.state.put_profile(dict(body))
        OPERATOR.queue.add(("profile", namespace, name))
    if key is not None:
        _enqueue_infds(*key)
        for sibling in OPERATOR.state.profile_names(*key):  # which duplicate is used may change
            OPERATOR.queue.add(("profile", namespace, sibling))


@kopf.on.event("batch", "v1", "jobs", labels=BENCHMARK)
async def benchmark_job_event(type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        key = OPERATOR.state.drop_job(namespace, name, uid=body.metadata.uid)
    else:
        key = OPERATOR.state.put_job(dict(body))
        if not job_state(dict(body)).active and ANNOTATION_FAILURE_REASON not in (body.metadata.annotations or {}):
            OPERATOR.queue.add(("job", namespace, name))
    if key is not None:
        _enqueue_infds(*key)


@kopf.on.event("apps", "v1", "deployments", labels=SERVING)
async def serving_deployment_event(type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
    if type == "DELETED":
        owner = OPERATOR.state.drop_deployment(namespace, name)
    else:
        owner = OPERATOR.state.put_deployment(dict(body))
    if owner is not None:
        OPERATOR.queue.add(("infd", *owner))
    pool = (body.metadata.labels or {}).get(names.LABEL_POOL)
    if pool:
        OPERATOR.queue.add_after(("pool", pool), POOL_STATUS_DELAY)


@kopf.on.event("", "v1", "services", labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
async def serving_service_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    owner = OPERATOR.state.put_service(dict(body), deleted=type == "DELETED")
    if owner is not None:  # deleted or hand-edited: put back now, not at the next resync
        OPERATOR.queue.add(("infd", *owner))
