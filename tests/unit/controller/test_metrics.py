"""The operator's /metrics: gauges read from the status it wrote, counters of what it did, with
bounded labels; the endpoint itself over real HTTP; the failure paths (no answer, 404, a
reconcile that raises, a port already taken, a snapshot that breaks)."""

import socket
import time
import urllib.request

import pytest
from cases.mock_api import MockApi, Reply, closed_port_url, kube_at
from hybridplace.config import Settings
from hybridplace.controller.kube import ApiError
from hybridplace.controller.metrics import Metrics, Snapshot, StateCollector, deployment_samples, serve
from hybridplace.controller.reconcile import Reconciler, job_seconds
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

SEED_STATUS = {
    "decision": {
        "feasible": True, "objective": "cost",
        "placements": [{"pool": "cpu-standard", "replicas": 3, "batchSize": 100, "shareRps": 50.0,
                        "predictedLatencyMs": 260.7186, "utilisation": 0.5834, "costPerHour": 0.6048,
                        "watts": 135.0, "costPerMillion": 3.36, "wattHoursPerMillion": 750.0}],
        "totalCostPerHour": 0.6048, "totalWatts": 135.0, "costPerMillion": 3.36,
        "wattHoursPerMillion": 750.0, "alternatives": []},
    "observed": {"requestsPerSecond": 48.5, "latencyMs": 310.2, "queueMs": 4.1},
}


def infd(status=None, name="seed", namespace="ns", **spec):
    body = {"metadata": {"name": name, "namespace": namespace},
            "spec": {"slo": {"percentile": 95, "latencyMs": 1000}, "load": {"targetRps": 50}, **spec}}
    if status is not None:
        body["status"] = status
    return body


def scrape(registry) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition text, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_the_decision_gauges_are_the_status_figures():
    got = {(name, tuple(sorted(labels.items()))): value for name, labels, value in
           deployment_samples(infd(SEED_STATUS))}
    who = (("name", "seed"), ("namespace", "ns"))
    pool = tuple(sorted((*who, ("pool", "cpu-standard"))))
    assert got[("decision_cost_usd_per_hour", who)] == 0.6048
    assert got[("decision_cost_usd_per_million", who)] == 3.36
    assert got[("decision_watts", who)] == 135.0
    assert got[("decision_watt_hours_per_million", who)] == 750.0
    assert got[("decision_feasible", who)] == 1.0
    assert got[("decision_load_rps", who)] == 50.0
    assert got[("decision_replicas", pool)] == 3
    assert got[("decision_predicted_latency_milliseconds", pool)] == 260.7186
    assert got[("decision_pool_cost_usd_per_hour", pool)] == 0.6048
    assert got[("observed_requests_per_second", who)] == 48.5
    assert got[("observed_latency_milliseconds", who)] == 310.2
    assert got[("slo_latency_milliseconds", tuple(sorted((*who, ("percentile", "95")))))] == 1000


def test_unknown_figures_are_absent_never_zero():
    # No decision yet: only the SLO. Infeasible: feasible=0 and no cost (there is none).
    assert [n for n, _, _ in deployment_samples(infd())] == ["slo_latency_milliseconds"]
    infeasible = {"decision": {"feasible": False, "placements": [], "totalCostPerHour": 0.0,
                               "totalWatts": None, "costPerMillion": None}}
    got = {n: v for n, _, v in deployment_samples(infd(infeasible))}
    assert got == {"decision_feasible": 0.0, "decision_load_rps": 50.0, "slo_latency_milliseconds": 1000.0}
    # A pool without power: no watts gauge at all.
    no_power = {"decision": {**SEED_STATUS["decision"], "totalWatts": None, "wattHoursPerMillion": None}}
    assert "decision_watts" not in {n for n, _, _ in deployment_samples(infd(no_power))}


def test_the_planned_load_is_the_scaling_status_when_there_is_one():
    status = {**SEED_STATUS, "scaling": {"mode": "Operator", "loadRps": 118.0}}
    assert dict((n, v) for n, _, v in deployment_samples(infd(status)))["decision_load_rps"] == 118.0


def test_the_collector_exposes_state_and_decisions_in_one_registry():
    metrics = Metrics()
    snap = Snapshot(queue_depth=7, events_dropped=3, events_posted=11, jobs={("gpu-t4", "failed"): 1,
                    ("cpu-standard", "succeeded"): 2}, profile_ages={"cpu-standard": (7200.0, 60.0, 2)},
                    infds=[infd(SEED_STATUS), infd(name="other")])
    metrics.registry.register(StateCollector(lambda: snap))
    got = scrape(metrics.registry)
    assert got[("hybridplace_up", ())] == 1
    assert got[("hybridplace_workqueue_depth", ())] == 7
    assert got[("hybridplace_events_dropped_total", ())] == 3
    assert got[("hybridplace_benchmark_jobs", (("pool", "gpu-t4"), ("state", "failed")))] == 1
    assert got[("hybridplace_profile_age_seconds_max", (("pool", "cpu-standard"),))] == 7200
    assert got[("hybridplace_profile_age_seconds_min", (("pool", "cpu-standard"),))] == 60
    assert got[("hybridplace_decision_cost_usd_per_hour", (("name", "seed"), ("namespace", "ns")))] == 0.6048
    assert ("hybridplace_decision_cost_usd_per_hour", (("name", "other"), ("namespace", "ns"))) not in got
    # Reconcile counters exist from the start, per kind, at 0 (rate() needs a first sample).
    assert got[("hybridplace_reconcile_total", (("kind", "infd"),))] == 0


def test_a_broken_snapshot_still_answers_the_scrape():
    metrics = Metrics()

    def broken():
        raise RuntimeError("state is gone")

    metrics.registry.register(StateCollector(broken))
    got = scrape(metrics.registry)
    assert got[("hybridplace_up", ())] == 0
    assert ("hybridplace_workqueue_depth", ()) not in got


def test_api_calls_are_counted_by_verb_resource_and_result_including_failures():
    metrics = Metrics()
    with MockApi() as api:
        api.on("GET", "/apis/batch/v1/namespaces/ns/jobs/there", Reply(200, {"metadata": {"name": "there"}}))
        kube = api.kube()
        kube.metrics = metrics
        assert kube.get("Job", "ns", "there") is not None
        assert kube.get("Job", "ns", "absent") is None  # 404 is an answer
        with pytest.raises(ApiError):  # the mock answers 404: a refusal, counted with its code
            kube.create({"kind": "Job", "metadata": {"name": "x", "namespace": "ns"}})
    refused = kube_at(closed_port_url())
    refused.metrics = metrics
    with pytest.raises(ApiError):
        refused.get("Job", "ns", "x")
    got = scrape(metrics.registry)

    def calls(verb, resource, result):
        return got.get(("hybridplace_api_requests_total",
                        (("resource", resource), ("result", result), ("verb", verb))), 0)

    assert calls("GET", "jobs", "200") == 1
    assert calls("GET", "jobs", "404") == 1
    assert calls("POST", "jobs", "404") == 1
    assert calls("GET", "jobs", "error") == 1


def test_every_kind_the_operator_calls_is_counted_under_its_own_name():
    from hybridplace.controller.kube import PATHS, _resource

    metrics = Metrics()
    for path in PATHS.values():
        metrics.api_call("GET", _resource(path.format(ns="ns") + "/x"), 200)
    got = scrape(metrics.registry)
    assert not [k for k in got if k[0] == "hybridplace_api_requests_total" and ("resource", "other") in k[1]]


def test_labels_stay_bounded_whatever_the_caller_passes():
    metrics = Metrics()
    for i in range(50):
        metrics.api_call(f"VERB{i}", f"/weird/path/{i}", 1000 + i)
        metrics.reconciled(f"kind{i}", 0.01, failed=True)
    got = scrape(metrics.registry)
    api = [k for k in got if k[0] == "hybridplace_api_requests_total"]
    assert api == [("hybridplace_api_requests_total", (("resource", "other"), ("result", "error"),
                                                       ("verb", "other")))]
    assert got[("hybridplace_reconcile_errors_total", (("kind", "other"),))] == 50


def test_the_work_queue_reports_each_keys_wait():
    waits = []
    now = [100.0]
    q = WorkQueue(clock=lambda: now[0], on_wait=waits.append)
    q.add("a")
    now[0] += 2.5
    q.add("a")  # already due: its wait still counts from the first add
    assert q.get(timeout=0) == "a"
    q.add_after("b", 1.0)
    now[0] += 4.0  # due after 1 s, taken 3 s after that
    assert q.get(timeout=0) == "b"
    assert waits == [2.5, 3.0]


def test_reconciles_are_counted_by_kind_with_errors_and_durations():
    metrics = Metrics()
    with MockApi() as api:
        rec = Reconciler(api.kube(), ClusterState(), Settings(workers=1),
                         WorkQueue(base_delay=30, on_wait=metrics.queue_wait.observe), metrics=metrics)

        def reconcile(key):
            if key[1] == "bad":
                raise RuntimeError("broken")

        rec.reconcile = reconcile  # type: ignore[method-assign]
        rec.start()
        try:
            rec.queue.add(("pool", "good"))
            rec.queue.add(("pool", "bad"))
            deadline = time.monotonic() + 10
            while metrics.reconciles.labels("pool")._value.get() < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            rec.stop()
    got = scrape(metrics.registry)
    assert got[("hybridplace_reconcile_total", (("kind", "pool"),))] == 2
    assert got[("hybridplace_reconcile_errors_total", (("kind", "pool"),))] == 1
    assert got[("hybridplace_reconcile_duration_seconds_count", (("kind", "pool"),))] == 2
    assert got[("hybridplace_workqueue_wait_seconds_count", ())] == 2


def test_job_seconds_is_start_to_completion_and_unknown_without_either():
    job = {"status": {"startTime": "2026-11-30T01:00:00Z", "completionTime": "2026-11-30T01:01:30Z"}}
    assert job_seconds(job, None) == 90
    failed = {"status": {"startTime": "2026-11-30T01:00:00Z"}}
    assert job_seconds(failed, {"lastTransitionTime": "2026-11-30T01:00:10Z"}) == 10
    assert job_seconds({"status": {}}, None) is None
    assert job_seconds({"status": {"startTime": "junk", "completionTime": "2026-11-30T01:00:00Z"}}, None) is None


def test_benchmark_durations_are_counted_once_per_result():
    metrics = Metrics()
    metrics.benchmark_finished(True, 42.0)
    metrics.benchmark_finished(False, None)  # unknown duration: not counted as 0
    got = scrape(metrics.registry)
    assert got[("hybridplace_benchmark_duration_seconds_count", (("result", "succeeded"),))] == 1
    assert ("hybridplace_benchmark_duration_seconds_count", (("result", "failed"),)) not in got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_endpoint_serves_the_registry_and_a_taken_port_is_an_error():
    metrics = Metrics()
    metrics.registry.register(StateCollector(lambda: Snapshot(infds=[infd(SEED_STATUS)])))
    port = free_port()
    server = serve(port, metrics.registry, address="127.0.0.1")
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'hybridplace_decision_cost_usd_per_hour{name="seed",namespace="ns"} 0.6048' in text
        with pytest.raises(OSError):
            serve(port, metrics.registry, address="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()


def test_the_port_is_a_flag_with_an_environment_default(monkeypatch):
    monkeypatch.setenv("HP_METRICS_PORT", "9123")
    assert Settings.from_env().metrics_port == 9123
    assert Settings.from_env(metrics_port=0).metrics_port == 0
    with pytest.raises(ValueError, match="--metrics-port"):
        Settings(metrics_port=70000)


def test_state_counts_jobs_by_pool_and_state():
    state = ClusterState()
    for name, pool, conditions, annotations in [
        ("a", "cpu", [], {}),
        ("b", "cpu", [{"type": "Complete", "status": "True"}], {}),
        ("c", "gpu", [{"type": "Failed", "status": "True"}], {"hybridplace.io/failure-reason": "NoDevice"}),
        ("d", "gpu", [{"type": "Failed", "status": "True"}], {}),
    ]:
        state.put_job({"metadata": {"name": name, "namespace": "ns", "labels": {"hybridplace.io/pool": pool},
                                    "annotations": {"hybridplace.io/model-digest": f"sha256:{name}", **annotations}},
                       "status": {"conditions": conditions}})
    assert state.job_counts() == {("cpu", "running"): 1, ("cpu", "succeeded"): 1, ("gpu", "failed"): 1,
                                  ("gpu", "finished"): 1}


def test_hybridplace_run_refuses_a_taken_metrics_port_in_one_line(capsys, monkeypatch):
    import kopf
    from hybridplace.cli.main import main
    from hybridplace.controller import handlers

    def never(**_):
        raise AssertionError("the operator started although its metrics port is taken")

    monkeypatch.setattr(kopf, "run", never)
    monkeypatch.setattr("hybridplace.cli.run._check_credentials", lambda _kubeconfig: None)  # not this test's
    saved = handlers.OPERATOR.settings
    handlers.OPERATOR.metrics = None
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            code = main(["run", "--liveness", "", "--metrics-port", str(port)])
        finally:
            handlers.OPERATOR.settings = saved
            handlers.OPERATOR.metrics = None
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"hybridplace run: --metrics-port {port} (HP_METRICS_PORT): cannot listen")
    assert len(err.strip().splitlines()) == 1


def test_the_calibration_ratio_is_a_gauge_per_pool_once_the_status_has_one():
    # status.calibration as the calibration issue writes it: a list per pool with its ratio.
    status = {**SEED_STATUS, "calibration": [{"pool": "cpu-standard", "ratio": 1.93, "observedMs": 41.2},
                                             {"pool": "gpu-t4", "ratio": "junk"}]}
    got = [(n, labels.get("pool"), v) for n, labels, v in deployment_samples(infd(status)) if n == "calibration_ratio"]
    assert got == [("calibration_ratio", "cpu-standard", 1.93)]
    assert not [n for n, _, _ in deployment_samples(infd(SEED_STATUS)) if n == "calibration_ratio"]
