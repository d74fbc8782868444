"""The I/O half under faults, against a mock API server on loopback (tests/cases/mock_api.py):
every failure of a call is the wrapper's ApiError, Events survive an API-server blip, the
worker loop honours Retry-After, and the liveness probe sees a dead or stuck background."""

import threading
import time

import kopf
import pytest
from cases.mock_api import MockApi, Reply, closed_port_url, kube_at, status
from hybridplace.config import Settings
from hybridplace.controller import handlers
from hybridplace.controller.kube import ApiError, retry_after_seconds
from hybridplace.controller.reconcile import EventPoster, Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

JOBS = "/apis/batch/v1/namespaces/ns/jobs"
EVENTS = "/api/v1/namespaces/ns/events"
INVOLVED = {
    "apiVersion": "hybridplace.io/v1alpha1",
    "kind": "InferenceDeployment",
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
}


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# -- the client wrapper ------------------------------------------------------------------------


def test_connection_refused_is_an_api_error_with_status_0():
    with pytest.raises(ApiError) as err:
        kube_at(closed_port_url()).get("Job", "ns", "x")
    assert err.value.status == 0 and err.value.transient


def test_a_reset_connection_is_an_api_error_not_a_urllib3_error():
    with MockApi() as api:
        api.down = True
        with pytest.raises(ApiError) as err:
            api.kube().create({"kind": "Job", "metadata": {"name": "x", "namespace": "ns"}})
    assert err.value.status == 0 and err.value.transient


def test_a_read_timeout_is_an_api_error():
    with MockApi() as api:
        api.on("GET", JOBS, Reply(200, {}, hang=1.0))
        with pytest.raises(ApiError) as err:
            api.kube(timeout=(1.0, 0.2)).get("Job", "ns", "x")
    assert err.value.status == 0 and "Timeout" in str(err.value)


def test_a_reconciles_call_waits_less_than_a_list_of_everything():
    """One hung call held every placement up (they share a lock) for the minute it waited; a
    list of every object of a big cluster may take longer, and gets it."""
    from hybridplace.controller.kube import Kube

    default = Kube(None)
    assert default.timeout[1] <= 15 < default.list_timeout[1]
    with MockApi() as api:
        api.on("GET", JOBS, Reply(200, {"items": []}, hang=0.5))
        kube = api.kube(timeout=(1.0, 0.2))
        kube.list_timeout = (1.0, 2.0)
        with pytest.raises(ApiError):
            kube.get("Job", "ns", "x")
        assert kube.list_all_versioned("Job", namespaces=("ns",)) == ([], 0)  # waited for


def test_409_on_create_is_none_and_410_and_5xx_are_errors_with_their_status():
    with MockApi() as api:
        api.on("POST", JOBS, status(409, "AlreadyExists"))
        api.on("GET", JOBS, status(410, "Expired"), status(503, "ServiceUnavailable"))
        kube = api.kube()
        assert kube.create({"kind": "Job", "metadata": {"name": "x", "namespace": "ns"}}) is None
        with pytest.raises(ApiError) as gone:
            kube.list("Job", "ns")
        with pytest.raises(ApiError) as unavailable:
            kube.list("Job", "ns")
    assert (gone.value.status, gone.value.transient) == (410, False)
    assert (unavailable.value.status, unavailable.value.transient) == (503, True)


@pytest.mark.parametrize("body", [b"<html><body>502 Bad Gateway</body></html>", b'{"kind": "Jo', [], "text"],
                         ids=["html", "cut-off", "list", "string"])
def test_a_2xx_that_is_not_a_json_object_is_a_transient_error_not_a_refusal(body):
    """A proxy in the way answering 200 with a page, or a cut-off body: no usable answer, tried
    again like a dropped connection, never recorded as the API server refusing the object."""
    with MockApi() as api:
        api.on("GET", JOBS, Reply(200, body))
        with pytest.raises(ApiError) as err:
            api.kube().get("Job", "ns", "x")
    assert (err.value.status, err.value.reason, err.value.transient) == (0, "InvalidResponse", True)
    assert "HTTP 200" in err.value.message


def test_429_carries_the_servers_retry_after():
    with MockApi() as api:
        api.on("GET", JOBS, status(429, "TooManyRequests", headers={"Retry-After": "7"}))
        with pytest.raises(ApiError) as err:
            api.kube().get("Job", "ns", "x")
    assert (err.value.status, err.value.retry_after, err.value.transient) == (429, 7.0, True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("-5", 0.0),
        ("100000", 600.0),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_is_read_in_seconds_and_bounded(header, expected):
    assert retry_after_seconds(header) == expected


def test_event_never_raises_when_the_api_server_is_gone():
    error = kube_at(closed_port_url()).event(INVOLVED, "Normal", "Test", "hello")
    assert isinstance(error, ApiError) and error.status == 0


def test_an_event_name_fits_whatever_the_objects_name():
    with MockApi() as api:
        api.on("POST", EVENTS, Reply(201, {}))
        long = {**INVOLVED, "metadata": {**INVOLVED["metadata"], "name": "a" * 253}}
        assert api.kube().event(long, "Normal", "Test", "hello") is None
        assert len(api.calls("POST", EVENTS)[0]["metadata"]["name"]) <= 253


def test_an_event_names_the_replica_that_posted_it():
    """With several replicas, an Event's reportingInstance says which one acted."""
    with MockApi() as api:
        api.on("POST", EVENTS, Reply(201, {}))
        kube = api.kube()
        kube.instance = "host-42-abcdef"
        kube.event(INVOLVED, "Normal", "Test", "hello")
        assert api.calls("POST", EVENTS)[0]["reportingInstance"] == "host-42-abcdef"


def test_the_calls_count_can_be_taken_while_other_threads_call():
    kube = kube_at(closed_port_url())
    stop = threading.Event()

    def count():
        i = 0
        while not stop.is_set():
            with kube._calls_lock:
                kube._calls[f"GET kind{i}"] += 1
            i += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        for _ in range(200):
            kube.take_calls().most_common(8)  # the old code iterated the live Counter here
    finally:
        stop.set()
        thread.join()
    assert sum(kube.take_calls().values()) >= 0


# -- the Events poster -------------------------------------------------------------------------


def test_events_keep_flowing_after_the_api_server_comes_back():
    with MockApi() as api:
        api.on("POST", EVENTS, Reply(201, {}))
        poster = EventPoster(api.kube(), attempts=2, base_delay=0.01)
        poster.start()
        api.down = True
        poster.post(INVOLVED, "Normal", "DuringOutage", "lost after 2 attempts")
        assert wait_for(lambda: poster.dropped == 1)
        api.down = False
        poster.post(INVOLVED, "Normal", "AfterOutage", "arrives")
        assert wait_for(lambda: poster.posted == 1)
        assert poster.alive()
        poster.stop()
        reasons = [b["reason"] for b in api.calls("POST", EVENTS)]
        assert reasons == ["DuringOutage", "DuringOutage", "AfterOutage"]  # 2 attempts, then 1


def test_a_transient_failure_is_retried_after_the_servers_retry_after():
    with MockApi() as api:
        api.on(
            "POST",
            EVENTS,
            status(429, "TooManyRequests", headers={"Retry-After": "1"}),
            status(500, "InternalError"),
            Reply(201, {}),
        )
        poster = EventPoster(api.kube(), attempts=5, base_delay=0.01)
        poster.start()
        started = time.monotonic()
        poster.post(INVOLVED, "Normal", "Retried", "third time")
        assert wait_for(lambda: poster.posted == 1)
        assert time.monotonic() - started >= 1.0  # Retry-After: 1 was honoured
        assert (poster.failures, poster.dropped) == (2, 0)
        poster.stop()


def test_a_permanent_failure_is_not_retried():
    with MockApi() as api:
        api.on("POST", EVENTS, status(422, "Invalid"))
        poster = EventPoster(api.kube(), attempts=5, base_delay=0.01)
        poster.start()
        poster.post(INVOLVED, "Normal", "Bad", "x")
        assert wait_for(lambda: poster.dropped == 1)
        poster.stop()
        assert len(api.calls("POST", EVENTS)) == 1


class RaisingKubeMock:
    """A mock Kube whose event() breaks its promise and raises."""

    def __init__(self):
        self.calls = 0

    def event(self, *_):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("boom")


def test_the_events_thread_outlives_an_unexpected_exception():
    kube = RaisingKubeMock()
    poster = EventPoster(kube)  # type: ignore[arg-type]
    poster.start()
    poster.post(INVOLVED, "Normal", "One", "raises")
    poster.post(INVOLVED, "Normal", "Two", "posted")
    assert wait_for(lambda: poster.posted == 1)
    assert poster.alive() and poster.failures == 1
    poster.stop()


# -- the worker loop and the liveness probe ----------------------------------------------------


def reconciler(api, **settings):
    return Reconciler(api.kube(), ClusterState(), Settings(workers=1, **settings), WorkQueue(base_delay=0.01))


def test_a_worker_outlives_a_failing_log_line_and_the_probe_stays_healthy():
    with MockApi() as api:
        rec = reconciler(api)
        counted = []

        def count_mock(seconds):
            counted.append(seconds)
            raise RuntimeError("counting broke")

        rec._count = count_mock  # type: ignore[method-assign]
        rec.start()
        try:
            rec.queue.add(("pool", "absent"))
            rec.queue.add(("pool", "absent-too"))
            assert wait_for(lambda: len(counted) == 2)
            assert rec.health(stall_seconds=60) == []
        finally:
            rec.stop()


def test_a_429_is_retried_no_sooner_than_retry_after():
    with MockApi() as api:
        api.on("GET", JOBS, status(429, "TooManyRequests", headers={"Retry-After": "30"}))
        rec = reconciler(api)
        rec.start()
        try:
            rec.queue.add(("job", "ns", "x"))
            assert wait_for(lambda: rec.errors == 1)
            assert wait_for(lambda: len(rec.queue) == 1)
            assert rec.queue._due[("job", "ns", "x")] - time.monotonic() > 25
        finally:
            rec.stop()


def test_the_probe_fails_when_a_thread_is_dead_or_the_queue_is_stuck():
    with MockApi() as api:
        rec = reconciler(api)
        rec.start()
        try:
            assert rec.health(stall_seconds=60) == []
            dead = threading.Thread(target=lambda: None, name="reconcile-9")
            dead.start()
            dead.join()
            rec._threads.append(dead)
            assert rec.health(stall_seconds=60) == ["thread reconcile-9 is dead"]
            handlers.OPERATOR.reconciler = rec
            handlers.OPERATOR.settings = Settings()
            with pytest.raises(kopf.PermanentError, match="reconcile-9 is dead"):
                handlers.background_work_alive()
        finally:
            handlers.OPERATOR.reconciler = None
            handlers.OPERATOR.settings = None
            rec.stop()


def test_the_probe_reports_a_dead_events_thread():
    with MockApi() as api:
        rec = reconciler(api)  # never started: no thread is alive
        rec._threads = []
        assert rec.health(stall_seconds=60) == ["the Events thread is dead"]


def test_a_queue_with_work_due_and_no_progress_counts_as_stalled():
    clock = [1000.0]
    queue = WorkQueue(clock=lambda: clock[0])
    assert queue.stalled_for() == 0.0
    queue.add("a")
    clock[0] += 700
    assert queue.stalled_for() == 700
    assert queue.get(timeout=0) == "a"
    assert queue.stalled_for() == 0.0
    queue.add("b")  # due, but "a" is still being worked on: progress was when "a" was taken
    clock[0] += 5
    assert queue.stalled_for() == 5


def test_a_long_retry_after_never_holds_the_events_thread_longer_than_its_cap():
    with MockApi() as api:
        api.on("POST", EVENTS, status(429, "TooManyRequests", headers={"Retry-After": "600"}), Reply(201, {}))
        poster = EventPoster(api.kube(), attempts=3, base_delay=0.01, max_delay=0.3)
        poster.start()
        poster.post(INVOLVED, "Normal", "Capped", "posted after 0.3 s, not 600 s")
        assert wait_for(lambda: poster.posted == 1, timeout=5)
        poster.stop()


def test_startup_against_an_api_server_still_starting_is_retried_without_a_traceback(tmp_path):
    """A fresh API server answers 429 "storage is (re)initializing" for a moment: the startup
    handler asks kopf to run it again after Retry-After, instead of failing with a traceback."""
    import yaml

    with MockApi() as api:
        api.on("GET", "/api/v1/nodes", status(429, "TooManyRequests", "storage is (re)initializing",
                                              headers={"Retry-After": "1"}))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "mock",
            "clusters": [{"name": "mock", "cluster": {"server": api.url}}],
            "users": [{"name": "mock", "user": {"token": "x"}}],
            "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "mock"}}]}))
        handlers.OPERATOR.kubeconfig = str(kubeconfig)
        handlers.OPERATOR.settings = Settings(workers=1, metrics_port=0)  # no port taken by a unit test
        try:
            with pytest.raises(kopf.TemporaryError, match="storage is"):
                handlers.configure(settings=kopf.OperatorSettings())
        finally:
            handlers.OPERATOR.kubeconfig = None
            handlers.OPERATOR.settings = None
            handlers.OPERATOR.reconciler = None
            handlers.OPERATOR.metrics = None


def test_a_name_is_one_path_segment_whatever_it_holds():
    """Defence in depth behind the CRD's patterns: a name from a user's spec cannot reach
    another path of the API server."""
    with MockApi() as api:
        assert api.kube().get("Gateway", "ns", "../../../api/v1/namespaces/kube-system/services/kube-dns") is None
        ((method, path, _),) = api.requests
    assert method == "GET"
    assert path == ("/apis/gateway.networking.k8s.io/v1/namespaces/ns/gateways/"
                    "..%2F..%2F..%2Fapi%2Fv1%2Fnamespaces%2Fkube-system%2Fservices%2Fkube-dns")


def test_the_probe_fails_when_the_observation_thread_is_stuck_in_a_tick():
    """A Prometheus that holds the one observation thread (before its queries were bounded, a
    Retry-After of an hour did) left every deployment unobserved while the probe said ok."""

    class StuckLoop:
        alive = True

        def __init__(self):
            self.overdue = 0.0

        def stalled(self, max_s):
            return self.overdue > max_s

    with MockApi() as api:
        rec = reconciler(api)
        rec.start()
        loop = StuckLoop()
        try:
            handlers.OPERATOR.reconciler = rec
            handlers.OPERATOR.settings = Settings()
            handlers.OPERATOR.observer = loop
            assert handlers.background_work_alive() == "ok"
            loop.overdue = Settings().stall_seconds + 1
            with pytest.raises(kopf.PermanentError, match="observation thread .* has not finished a tick"):
                handlers.background_work_alive()
        finally:
            handlers.OPERATOR.reconciler = None
            handlers.OPERATOR.settings = None
            handlers.OPERATOR.observer = None
            rec.stop()
