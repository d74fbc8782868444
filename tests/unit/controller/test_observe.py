"""Reading Prometheus: the queries, the answers turned into observations, and every failure path
(connection refused, timeout, HTTP 5xx, malformed answers) giving "unknown", never zero. The
Prometheus clients here are fakes (FakePrometheus); the loop is tested with a fake clock."""

from __future__ import annotations

import pytest
import requests
from hybridplace.controller.observe import (
    PrometheusObserver,
    fleet_queries,
    observation_from,
    observe_fleet,
    queries,
    selector,
)
from hybridplace.controller.observer import ObservationLoop, ObservationStore


def vector(*items):
    """An instant vector as prometheus-api-client returns it: [{metric, value: [t, "v"]}]."""
    return [{"metric": dict(m), "value": [0, str(v)]} for m, v in items]


class FakePrometheus:
    """Answers each query by the first key its PromQL starts with; or raises `fail`."""

    def __init__(self, answers=None, fail=None):
        self.answers = answers or {}
        self.fail = fail
        self.asked = []

    def custom_query(self, promql, timeout=None):
        self.asked.append(promql)
        if self.fail is not None:
            raise self.fail
        for prefix, answer in self.answers.items():
            if promql.startswith(prefix):
                return answer
        return []


def observer(fake):
    return PrometheusObserver("http://127.0.0.1:1", connect=lambda url: fake, clock=lambda: 100.0)


def fleet_answers():
    d1 = {"namespace": "team", "inferencedeployment": "a", "pool": "cpu"}
    d1g = {**d1, "pool": "gpu"}
    return {
        "sum by (namespace, inferencedeployment, pool) (rate(nv_inference_request_success": vector((d1, 30), (d1g, 90)),
        "max by": vector(({**d1, "quantile": "0.95"}, 40), ({**d1g, "quantile": "0.95"}, 25),
                         ({**d1, "quantile": "0.5"}, 10)),
        "sum by (namespace, inferencedeployment, pool) (rate(nv_inference_queue": vector((d1, 4.0), (d1g, 2.0)),
        "sum by (namespace, inferencedeployment, pool) (nv_inference_request_success)": vector((d1, 300), (d1g, 900)),
    }


def test_the_queries_select_one_deployment_and_refuse_injection():
    q = queries("team-a", "sentiment", 99)
    assert 'namespace="team-a",inferencedeployment="sentiment"' in q["rate"]
    assert 'quantile="0.99"' in q["latency"]
    with pytest.raises(ValueError):
        selector("team-a", 'x"} or vector(1) or {a="')


def test_fleet_figures_become_one_observation_per_deployment():
    fake = FakePrometheus(fleet_answers())
    figures, error = observer(fake).observe_all()
    assert error is None and len(fake.asked) == 4 and set(figures) == {("team", "a")}
    obs = observation_from(figures[("team", "a")], 95, 100.0)
    assert obs.known and obs.rate_rps == 120 and obs.latency_ms == 40  # the worst pool's p95
    assert obs.requests == 1200 and obs.by_pool["gpu"]["latency"] == 25
    assert obs.queue_ms == pytest.approx((4.0 * 30 + 2.0 * 90) / 120)
    assert set(fleet_queries()) == {"rate", "latency", "queue", "requests"}


@pytest.mark.parametrize("fail", [
    requests.exceptions.ConnectionError("[Errno 111] Connection refused"),
    requests.exceptions.ReadTimeout("read timed out"),
    requests.exceptions.HTTPError("503 Server Error: Service Unavailable"),
    ValueError("not JSON"),
], ids=["connection-refused", "timeout", "http-5xx", "malformed"])
def test_a_failed_query_is_unknown_with_the_reason_never_zero(fail):
    figures, error = observer(FakePrometheus(fail=fail)).observe_all()
    assert figures == {} and type(fail).__name__ in error
    obs = observation_from(figures.get(("team", "a")), 95, 100.0, error)
    assert not obs.known and obs.rate_rps is None and obs.requests is None and type(fail).__name__ in obs.error
    single = observer(FakePrometheus(fail=fail)).observe("team", "a")
    assert not single.known and "query failed" in single.error


def test_a_malformed_vector_is_an_error_not_data():
    figures, error = observe_fleet(lambda q: {"resultType": "matrix"}, "30s", 0.0)
    assert figures == {} and "expected a vector" in error
    figures, error = observe_fleet(lambda q: [{"metric": {}, "value": [0, "NaN"]}], "30s", 0.0)
    assert error is None and figures == {}


def test_no_series_for_a_deployment_is_no_data():
    obs = observation_from(None, 95, 5.0)
    assert not obs.known and "no samples" in obs.error


class ManualClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def infd(mode="Operator", interval=15, delay=300):
    return {"spec": {"slo": {"percentile": 95, "latencyMs": 50},
                     "scaling": {"mode": mode, "intervalSeconds": interval, "scaleDownDelaySeconds": delay}}}


def test_the_loop_observes_each_deployment_at_its_interval_and_enqueues_it():
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    asked, enqueued = [], []
    answers = {("team", "a"): {"rate": {"cpu": 10.0}, "latency": {("cpu", "0.95"): 12.0}, "queue": {},
                               "requests": {"cpu": 50.0}}}

    def query_all(window):
        asked.append(window)
        return answers, None

    infds = {("team", "a"): infd(interval=15), ("team", "b"): infd(interval=5), ("team", "off"): infd("Off")}
    loop = ObservationLoop(query_all, store, lambda: infds, enqueued.append)
    assert sorted(loop.run_once()) == [("team", "a"), ("team", "b")]
    clock.t += 5
    assert loop.run_once() == [("team", "b")]  # a's 15 s have not passed
    clock.t += 10
    assert sorted(loop.run_once()) == [("team", "a"), ("team", "b")]
    assert len(asked) == 3  # one fleet query per tick, whatever the number of deployments
    a = store.get(("team", "a"))
    assert [s.rate_rps for s in a.history] == [10.0, 10.0] and a.latest.latency_ms == 12.0
    b = store.get(("team", "b"))
    assert b.history[-1].rate_rps is None and "no samples" in b.latest.error  # no series: unknown
    assert ("team", "off") not in enqueued


def test_the_loop_survives_errors_and_forgets_deleted_deployments():
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    infds = {("team", "a"): infd(interval=5)}
    calls = []

    def query_all(window):
        calls.append(window)
        if len(calls) == 1:
            raise RuntimeError("a bug, once")
        return {}, "rate query failed: ConnectionError: refused"

    loop = ObservationLoop(query_all, store, lambda: infds, lambda key: None, tick_s=0.01)
    with pytest.raises(RuntimeError):
        loop.run_once()  # run_once itself raises; the thread's loop catches it
    clock.t += 5
    loop.run_once()
    latest = store.get(("team", "a")).latest
    assert not latest.known and "refused" in latest.error
    infds.clear()
    clock.t += 5
    loop.run_once()
    assert store.get(("team", "a")).history == ()


def test_the_thread_keeps_running_after_an_error():
    import time

    store = ObservationStore(observing=True)
    state = {"n": 0}

    def query_all(window):
        state["n"] += 1
        raise OSError("connection refused")

    loop = ObservationLoop(query_all, store, lambda: {("t", "a"): infd(interval=5)}, lambda key: None, tick_s=0.01)
    loop.start()
    deadline = time.monotonic() + 5
    while loop.errors < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert loop.errors >= 1 and loop.alive
    loop.stop()
    assert not loop.alive


@pytest.mark.parametrize(("interval", "delay"), [(15, 36000), (5, 86400)])
def test_the_history_covers_the_longest_scale_down_delay_so_the_load_can_go_down(interval, delay):
    """A load of 400 requests/s, then 10 for longer than a long scale-down delay (the CRD allows
    86,400 s at a 5 s interval): the history still reaches back over the whole delay, and the
    policy scales down. A fixed cap on the samples would have cut the window short: never down."""
    from hybridplace.placement.scaling import ScalingPolicy, plan_load

    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    key = ("team", "a")
    rate = {"value": 400.0}

    def query_all(window):
        return {key: {"rate": {"cpu": rate["value"]}, "latency": {}, "queue": {}, "requests": {}}}, None

    loop = ObservationLoop(query_all, store, lambda: {key: infd(interval=interval, delay=delay)}, lambda k: None)
    end = 3600 + delay + 4 * interval
    while clock.t <= end:
        rate["value"] = 400.0 if clock.t < 3600 else 10.0
        loop.run_once()
        clock.t += interval
    clock.t -= interval
    seen = store.get(key)
    assert seen.now - seen.history[0].at >= delay
    assert len(seen.history) <= (delay + 3 * interval) / interval + 3  # no more than the window needs
    policy = ScalingPolicy(interval_s=interval, scale_down_delay_s=delay, slo_ms=50)
    d = plan_load(policy, seen.history, target_rps=400.0, current_rps=400.0, now=seen.now,
                  cost_at=lambda load: float(-(-load // 50)))  # one replica per 50 requests/s
    assert d.action == "down" and d.load_rps == pytest.approx(11.0)


def test_the_window_is_the_operators_setting_in_queries_observations_and_status():
    """A scrape interval of 30 s leaves a 20 s rate empty: the window is a setting, used by the
    queries and carried into what the planner reads and writes (status.observed.window)."""
    from hybridplace.config import Settings
    from hybridplace.controller.observe import fleet_queries, queries
    from hybridplace.controller.observer import ObservationStore

    assert "[120s]" in queries("ns", "web", window="120s")["rate"]
    assert all("[120s]" in q for q in fleet_queries("120s").values() if "rate(" in q)
    store = ObservationStore(observing=True, clock=lambda: 100.0, window="120s")
    assert store.get(("ns", "web")).window == "120s"
    loop = ObservationLoop(lambda window: ({}, None), store, dict, lambda key: None)
    assert loop.window == "120s"  # the queries' window is the store's: one setting
    assert Settings().observe_window_seconds == 20
    with pytest.raises(ValueError, match=r"--observe-window-seconds \(HP_OBSERVE_WINDOW_SECONDS\) is 5"):
        Settings(observe_window_seconds=5)


def test_a_clock_stepped_back_observes_at_once_and_drops_the_history_it_cannot_order():
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    answers = {("team", "a"): {"rate": {"cpu": 10.0}, "latency": {}, "queue": {}, "requests": {}}}
    loop = ObservationLoop(lambda window: (answers, None), store, lambda: {("team", "a"): infd(interval=15)},
                           lambda key: None)
    clock.t = 1000.0
    assert loop.run_once() == [("team", "a")]
    clock.t = 1000.0 - 3600  # an NTP step back of an hour
    assert loop.run_once() == [("team", "a")]  # not an hour without observations
    assert [s.at for s in store.get(("team", "a")).history] == [clock.t]


def test_a_deployment_switched_to_off_keeps_no_observation():
    clock = ManualClock()
    store = ObservationStore(observing=True, clock=clock)
    answers = {("team", "a"): {"rate": {"cpu": 60.0}, "latency": {}, "queue": {}, "requests": {}}}
    infds = {("team", "a"): infd(interval=15)}
    loop = ObservationLoop(lambda window: (answers, None), store, lambda: infds, lambda key: None)
    loop.run_once()
    assert store.get(("team", "a")).latest.rate_rps == 60.0
    infds[("team", "a")] = infd("Off")
    clock.t += 15
    assert loop.run_once() == []
    off = store.get(("team", "a"))
    assert off.latest is None and off.history == ()


def test_docs_show_exactly_the_queries_the_operator_runs():
    """docs/observability.md's table is what fleet_queries() sends (it once showed queries()'
    per-deployment ones, which the operator's loop does not run)."""
    from pathlib import Path

    from hybridplace.controller.observe import fleet_queries

    doc = (Path(__file__).resolve().parents[3] / "docs" / "observability.md").read_text()
    shown = doc.replace("BY", "by (namespace, inferencedeployment, pool)")
    for figure, promql in fleet_queries("20s").items():
        assert f"`{promql}`" in shown, figure
