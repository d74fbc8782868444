"""How observing fails, and what it costs: one attempt per query against a real HTTP server (no
library retries, no Retry-After waits), a bound on a whole tick's queries, a pool missing from
Prometheus' answer making the load unknown rather than lower, and failed ticks logged (rate
limited) and counted. The servers here are fakes on 127.0.0.1 that each test starts and stops."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace.controller.metrics import Metrics
from hybridplace.controller.observe import PrometheusObserver, observation_from
from hybridplace.controller.observer import ObservationLoop, ObservationStore

# --- a fake Prometheus over real HTTP ------------------------------------------------------------


class FakePrometheusHttp(ThreadingHTTPServer):
    """Answers /api/v1/query: `mode` "503" with `Retry-After: retry_after`; "hang" (no answer
    until the test ends); "slow" (an empty vector after `delay_s`). `hits` holds the time of
    each request."""

    daemon_threads = True

    def __init__(self, mode: str, retry_after: int = 0, delay_s: float = 0.0):
        self.mode, self.retry_after, self.delay_s = mode, retry_after, delay_s
        self.hits: list[float] = []
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _PrometheusHandler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class _PrometheusHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        server = self.server
        server.hits.append(time.monotonic())
        if server.mode == "503":
            self.send_response(503)
            self.send_header("Retry-After", str(server.retry_after))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if server.mode == "hang":
            server.release.wait(10)
            return
        server.release.wait(server.delay_s)
        body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def prometheus():
    servers = []

    def start(*args, **kwargs):
        servers.append(FakePrometheusHttp(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def timed(observer):
    start = time.monotonic()
    figures, error = observer.observe_all()
    return figures, error, time.monotonic() - start


# --- no retries, and a bound on a tick --------------------------------------------------------------


def test_a_503_with_retry_after_is_one_attempt_and_no_wait(prometheus):
    """prometheus-api-client's default retries 503 three times and sleeps for each Retry-After
    (uncapped: an hour's would stop every deployment's observation for an hour). One attempt:
    the next tick is the retry."""
    server = prometheus("503", retry_after=2)
    figures, error, took = timed(PrometheusObserver(server.url, timeout_s=1.0))
    assert figures == {} and "503" in error
    assert len(server.hits) == 1 and took < 1.0


def test_a_hanging_prometheus_costs_one_timeout_per_tick_not_four(prometheus):
    server = prometheus("hang")
    figures, error, took = timed(PrometheusObserver(server.url, timeout_s=0.3))
    assert figures == {} and "Timeout" in error
    assert len(server.hits) == 1 and took < 1.0


def test_slow_answers_end_at_the_ticks_budget_and_the_rest_is_skipped(prometheus):
    """Each query answers, but slowly: four of them would take 1.6 s; the tick's budget of 0.7 s
    ends it, and the tick's observation is unknown (no figures), not what the first queries saw."""
    server = prometheus("slow", delay_s=0.4)
    figures, error, took = timed(PrometheusObserver(server.url, timeout_s=5.0, budget_s=0.7))
    assert figures == {} and error is not None and "0.7 s" in error
    assert len(server.hits) == 2 and took < 1.2


class ManualClock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self):
        return self.t


def infd(interval=15, delay=300, status=None):
    body = {"spec": {"slo": {"percentile": 95, "latencyMs": 50},
                     "scaling": {"mode": "Operator", "intervalSeconds": interval, "scaleDownDelaySeconds": delay}}}
    if status is not None:
        body["status"] = status
    return body


def test_the_loop_tells_a_stuck_tick_from_a_live_one():
    """A query that never returns (what the budget prevents, short of a bug) leaves the thread
    alive; `stalled` is what a liveness probe can check instead."""
    entered, release = threading.Event(), threading.Event()

    def query_all(window):
        entered.set()
        release.wait(10)
        return {}, None

    loop = ObservationLoop(query_all, ObservationStore(observing=True), lambda: {("t", "a"): infd(interval=5)},
                           lambda key: None, tick_s=0.01)
    assert loop.last_tick_age_s is None and loop.last_tick_s is None
    loop.start()
    try:
        assert entered.wait(5)
        assert not loop.stalled(5.0)
        time.sleep(0.3)
        assert loop.alive and loop.stalled(0.2)  # alive, yet no tick has finished for 0.3 s
        release.set()
        deadline = time.monotonic() + 5
        while loop.last_tick_s is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert loop.last_tick_s >= 0.3 and loop.last_tick_age_s < 1.0 and not loop.stalled(0.2)
    finally:
        release.set()
        loop.stop()


# --- a pool missing from the answer --------------------------------------------------------------


def serving_status(**available):
    """status with a decision placing replicas on each pool and its serving Deployments."""
    return {"decision": {"feasible": True, "placements": [{"pool": p, "replicas": 9} for p in available]},
            "serving": [{"pool": p, "replicas": 9, "availableReplicas": n, "state": "Ready" if n == 9 else "Starting"}
                        for p, n in available.items()]}


def test_a_serving_pool_missing_from_the_answer_is_unknown_load_and_no_scale_down():
    """The reviewer's case: gpu serves 90 of 120 requests/s, but its series are missing from
    every answer for longer than the scale-down delay. The sum of the rest (30) is no evidence
    of a lower load: the observation is unknown, naming the pool, and the policy does not lower."""
    import math

    from hybridplace.placement.scaling import ScalingPolicy, Size, plan_load

    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    key = ("team", "a")
    answers = {key: {"rate": {"cpu": 30.0}, "latency": {("cpu", "0.95"): 40.0}, "queue": {"cpu": 1.0},
                     "requests": {"cpu": 300.0}}}
    loop = ObservationLoop(lambda window: (answers, None), store,
                           lambda: {key: infd(status=serving_status(cpu=9, gpu=9))}, lambda k: None)
    for _ in range(25):
        loop.run_once()
        clock.t += 15
    clock.t -= 15
    seen = store.get(key)
    latest = seen.latest
    assert not latest.known and latest.rate_rps is None and "gpu" in latest.error and "no samples" in latest.error
    assert latest.latency_ms is None and latest.queue_ms is None  # not the worst pool's: one is missing
    assert latest.by_pool["cpu"]["rate"] == 30.0  # what was seen of the pools present is kept
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=300, slo_ms=50)
    d = plan_load(policy, seen.history, target_rps=120, current_rps=120, now=seen.now,
                  cost_at=lambda load: Size(math.ceil(load / 10), math.ceil(load / 10)))
    assert d.action != "down" and d.load_rps == 120


def test_a_pool_that_just_became_ready_and_has_no_series_yet_is_unknown_load():
    """gpu's replicas are available, but rate() has fewer than two of its samples yet."""
    obs = observation_from({"rate": {"cpu": 30.0}, "latency": {}, "queue": {}, "requests": {"cpu": 300.0}},
                           95, 1000.0, serving=["cpu", "gpu"])
    assert not obs.known and "gpu" in obs.error


def test_only_pools_with_available_replicas_are_waited_for():
    """A pool whose pods are all still Pending serves nothing, so its absence hides no load;
    waiting for it would leave the deployment unobserved (and unscaled) while it is Pending.
    Without status.serving, the decision's placements with replicas say which pools serve."""
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    answers = {("t", "pending"): {"rate": {"cpu": 30.0}, "latency": {}, "queue": {}, "requests": {}},
               ("t", "nostatus"): {"rate": {"cpu": 30.0}, "latency": {}, "queue": {}, "requests": {}},
               ("t", "zero"): {"rate": {"cpu": 30.0}, "latency": {}, "queue": {}, "requests": {}}}
    decision_only = {"decision": {"placements": [{"pool": "cpu", "replicas": 3}, {"pool": "gpu", "replicas": 2}]}}
    zero = {"decision": {"placements": [{"pool": "cpu", "replicas": 3}, {"pool": "gpu", "replicas": 0}]}}
    infds = {("t", "pending"): infd(status=serving_status(cpu=9, gpu=0)),
             ("t", "nostatus"): infd(status=decision_only), ("t", "zero"): infd(status=zero)}
    loop = ObservationLoop(lambda window: (answers, None), store, lambda: infds, lambda k: None)
    loop.run_once()
    assert store.get(("t", "pending")).latest.rate_rps == 30.0
    assert store.get(("t", "zero")).latest.rate_rps == 30.0
    nostatus = store.get(("t", "nostatus")).latest
    assert not nostatus.known and "gpu" in nostatus.error


def test_the_worst_latency_is_unknown_when_a_busy_pool_has_none():
    """Both pools' rates are there, but gpu's latency summary is not: the worst pool's latency
    is not the cpu pool's. The load stays known; an idle pool (no requests, no quantile) is no gap."""
    figures = {"rate": {"cpu": 30.0, "gpu": 90.0}, "latency": {("cpu", "0.95"): 40.0}, "queue": {"cpu": 2.0},
               "requests": {"cpu": 300.0, "gpu": 900.0}}
    obs = observation_from(figures, 95, 1000.0, serving=["cpu", "gpu"])
    assert obs.known and obs.rate_rps == 120.0
    assert obs.latency_ms is None and obs.queue_ms is None
    idle = observation_from({**figures, "rate": {"cpu": 30.0, "gpu": 0.0}}, 95, 1000.0, serving=["cpu", "gpu"])
    assert idle.latency_ms == 40.0 and idle.queue_ms == pytest.approx(2.0)


# --- failed ticks logged and counted -----------------------------------------------------------------


def test_a_failing_prometheus_is_logged_first_then_once_a_minute_then_on_recovery(caplog):
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    state = {"error": "rate query failed: ConnectionError: [Errno 111] Connection refused"}
    answers = {("t", "a"): {"rate": {"cpu": 1.0}, "latency": {}, "queue": {}, "requests": {}}}

    def query_all(window):
        return ({}, state["error"]) if state["error"] else (answers, None)

    loop = ObservationLoop(query_all, store, lambda: {("t", "a"): infd(interval=5)}, lambda k: None, monotonic=clock)
    caplog.set_level(logging.INFO, logger="hybridplace")
    for _ in range(26):  # 125 s of failing ticks, 5 s apart
        loop.run_once()
        clock.t += 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3  # at 0 s, 60 s, 120 s: not 26
    assert "Connection refused" in warnings[0].getMessage()
    assert "for 120 s" in warnings[2].getMessage()
    state["error"] = None
    loop.run_once()
    loop.run_once()
    recovered = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(recovered) == 1 and "again" in recovered[0].getMessage()
    assert loop.failed_ticks == 26


def test_failed_ticks_are_counted_in_the_operators_metrics():
    metrics = Metrics()
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    results = [({}, "rate query failed: ReadTimeout: timed out"), ({}, "latency query skipped"),
               ({("t", "a"): {"rate": {"cpu": 1.0}, "latency": {}, "queue": {}, "requests": {}}}, None)]
    loop = ObservationLoop(lambda window: results.pop(0), store, lambda: {("t", "a"): infd(interval=5)},
                           lambda k: None, metrics=metrics, monotonic=clock)
    for _ in range(3):
        loop.run_once()
        clock.t += 5
    value = metrics.registry.get_sample_value
    assert value("hybridplace_observe_errors_total") == 2.0
    assert value("hybridplace_observe_ticks_total") == 3.0
    assert value("hybridplace_observe_duration_seconds_count") == 3.0


def test_a_tick_that_raises_is_counted_too():
    metrics = Metrics()

    def query_all(window):
        raise OSError("a bug")

    loop = ObservationLoop(query_all, ObservationStore(observing=True), lambda: {("t", "a"): infd(interval=5)},
                           lambda k: None, tick_s=0.01, metrics=metrics)
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while loop.errors < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        loop.stop()
    assert loop.errors >= 1 and metrics.registry.get_sample_value("hybridplace_observe_errors_total") >= 1.0


# --- https: the certificate is checked ----------------------------------------------------------------


@pytest.fixture
def https_prometheus(tmp_path):
    """The fake over TLS with a self-signed certificate for 127.0.0.1 (openssl, as the cluster's
    own certificates are made); yields (url, the certificate's PEM path)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("no openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=prom",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    server = FakePrometheusHttp("slow")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.close()


def test_an_https_prometheus_is_trusted_only_with_a_certificate_that_checks_out(https_prometheus):
    """Certificate checks were off (disable_ssl): anyone on the path to an https Prometheus could
    feed the scaling loop its figures. Now an unknown certificate fails the tick (unknown, never
    zero), and one signed by --prometheus-ca-file is accepted."""
    url, ca = https_prometheus
    figures, error = PrometheusObserver(url, timeout_s=2.0).observe_all()
    assert figures == {} and error is not None and "SSL" in error, error
    figures, error = PrometheusObserver(url, timeout_s=2.0, ca_file=ca).observe_all()
    assert error is None, error


def test_a_ca_file_that_is_not_there_is_refused_at_start_naming_the_flag(tmp_path):
    from hybridplace.config import Settings

    with pytest.raises(ValueError, match="--prometheus-ca-file .HP_PROMETHEUS_CA_FILE."):
        Settings(prometheus_ca_file=str(tmp_path / "missing.pem"))
