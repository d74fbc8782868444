"""Re-profiling: when a pool's ModelProfile is measured again, and what happens meanwhile.

Every trigger with a fake clock (the plan's `now`): age past maxAge, changed benchmark settings
or worker image, a changed node type, calibration outside [0.67, 1.5] for longer than the
window. Then the plan's promises: the old profile keeps serving decisions until the new one is
recorded, one `Reprofiling` Event per Job, and a deleted profile is measured again at once even
while its finished Job still exists."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hybridplace import conditions as c
from hybridplace.api import load_objects, parse_object
from hybridplace.builders import names
from hybridplace.builders.jobs import benchmark_key
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import JobState, plan_inference_deployment
from hybridplace.controller.reprofile import (
    CalibrationReading,
    MaxAge,
    NodeTypes,
    ReprofileInputs,
    epoch,
    max_age,
    reprofile_reason,
)
from hybridplace.controller.state import ClusterState, job_state

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
LOADED = [x.obj for x in load_objects([EXAMPLES / "hardwarepools.yaml", EXAMPLES / "seed"])]
POOLS = {o.name: o for o in LOADED if o.kind == "HardwarePool"}
SEED_PROFILES = {o.spec.pool: o for o in LOADED if o.kind == "ModelProfile"}
SEED = next(o for o in LOADED if o.kind == "InferenceDeployment")
SETTINGS = Settings()
KEY = benchmark_key(SEED.spec.benchmark, None)
MEASURED_AT = "2026-11-20T00:00:00Z"
T0 = epoch(MEASURED_AT)
DAY = 86400.0


def rfc(t: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def measured(pool="cpu-standard", *, at=MEASURED_AT, key=KEY, image=None, provenance="measured", **device):
    """The seed profile of `pool` as if this operator had measured it."""
    body = copy.deepcopy(SEED_PROFILES[pool].to_dict())
    body["metadata"]["namespace"] = "default"
    body["metadata"]["labels"] = {names.LABEL_BENCHMARK_KEY: key} if key else {}
    body["metadata"]["annotations"] = {names.ANNOTATION_WORKER_IMAGE: image or SETTINGS.image_for(
        POOLS[pool].spec.accelerator.type)}
    body["spec"].update(provenance=provenance, measuredAt=at)
    if device:
        body["spec"]["device"] = {**body["spec"].get("device", {}), **device}
    return parse_object(body)


def infd(status=None, **spec):
    body = copy.deepcopy(SEED.to_dict())
    body["metadata"].update(uid="uid-1", generation=1, namespace="default")
    body["spec"]["placement"]["mode"] = "Recommend"
    for key, value in spec.items():
        body["spec"][key] = {**body["spec"].get(key, {}), **value}
    if status is not None:
        body["status"] = status
    return parse_object(body)


DEFAULT_AGE = MaxAge(30 * DAY, "default", False)
NO_INPUTS = ReprofileInputs()


def reason(profile, now, *, age=DEFAULT_AGE, key=KEY, inputs=NO_INPUTS, image=None):
    return reprofile_reason(profile, now=now, age=age, key=key, inputs=inputs,
                            worker_image=image or SETTINGS.image_for(POOLS[profile.spec.pool].spec.accelerator.type))


# -- the triggers, one by one, with a fake clock -------------------------------------------------

def test_a_profile_younger_than_max_age_is_kept_and_one_older_is_measured_again():
    age = MaxAge(3600, "spec.benchmark.maxAge", True)
    assert reason(measured(), T0 + 3599, age=age) is None
    why = reason(measured(), T0 + 3600, age=age)
    assert why is not None and "more than 1h ago (spec.benchmark.maxAge)" in why


def test_max_age_comes_from_the_spec_then_the_pool_then_the_operator():
    pool = POOLS["cpu-standard"]
    with_pool = parse_object({**pool.to_dict(), "spec": {**pool.spec.to_dict(), "profileMaxAge": "2h"}})
    assert max_age(infd(benchmark={"maxAge": "90s"}), with_pool, 99) == MaxAge(90, "spec.benchmark.maxAge", True)
    assert max_age(infd(), with_pool, 99).seconds == 7200 and max_age(infd(), with_pool, 99).explicit
    assert max_age(infd(), pool, 99) == MaxAge(99, "the operator's --profile-max-age-seconds", False)
    assert max_age(infd(benchmark={"maxAge": 0}), with_pool, 99).seconds == 0


def test_max_age_zero_never_measures_again():
    assert reason(measured(), T0 + 1000 * DAY, age=MaxAge(0, "spec.benchmark.maxAge", True)) is None


def test_an_imported_profile_ages_out_only_by_an_explicit_max_age():
    old = measured(provenance="imported", key=None)
    assert reason(old, T0 + 365 * DAY, age=MaxAge(30 * DAY, "operator", False)) is None
    assert reason(old, T0 + 31 * DAY, age=MaxAge(30 * DAY, "spec.benchmark.maxAge", True)) is not None


def test_a_profile_without_measured_at_has_no_age():
    assert reason(SEED_PROFILES["cpu-standard"], T0 + 1000 * DAY, age=MaxAge(10, "spec", True)) is None


def test_changed_benchmark_settings_mean_not_measured_yet():
    other = benchmark_key(infd(benchmark={"batchSizes": [1, 10]}).spec.benchmark, None)
    assert other != KEY
    why = reason(measured(key=other), T0)
    assert why is not None and "benchmark settings changed" in why


@pytest.mark.parametrize("change", [
    {"batchSizes": [1, 10]}, {"concurrency": [1, 2]}, {"engine": "triton", "concurrency": [1]}, {"durationSeconds": 5},
    {"search": "Grid"}, {"budgetPoints": 3},
])
def test_each_measured_setting_changes_the_key(change):
    assert benchmark_key(infd(benchmark=change).spec.benchmark, None) != KEY


def test_the_serving_image_changes_the_key_and_the_deadline_and_max_age_do_not():
    assert benchmark_key(SEED.spec.benchmark, "registry.example/triton:2") != KEY
    assert benchmark_key(infd(benchmark={"budgetSeconds": 60, "maxAge": "1d"}).spec.benchmark, None) == KEY


def test_settings_another_deployment_of_the_model_asks_for_are_current_no_ping_pong():
    other = benchmark_key(infd(benchmark={"batchSizes": [1, 10]}).spec.benchmark, None)
    assert reason(measured(key=other), T0, inputs=ReprofileInputs(wanted_keys=frozenset({KEY, other}))) is None
    assert reason(measured(key="gone"), T0, inputs=ReprofileInputs(wanted_keys=frozenset({KEY, other}))) is not None


def test_a_changed_worker_image_means_not_measured_yet():
    why = reason(measured(image="ghcr.io/hybridplace/worker-cpu:0.0.1"), T0)
    assert why is not None and "worker image changed" in why


def test_imported_profiles_are_not_measured_again_for_settings_or_worker_image():
    assert reason(measured(provenance="imported", key="old", image="elsewhere:1"), T0) is None


def test_a_changed_instance_type_of_the_pools_ready_nodes_means_measure_again():
    profile = measured(instanceType="cpu-16x64")
    same = ReprofileInputs(node_types={"cpu-standard": NodeTypes(frozenset({"cpu-16x64"}))})
    mixed = ReprofileInputs(node_types={"cpu-standard": NodeTypes(frozenset({"cpu-16x64", "cpu-32x128"}))})
    moved = ReprofileInputs(node_types={"cpu-standard": NodeTypes(frozenset({"cpu-32x128"}))})
    none_ready = ReprofileInputs(node_types={"cpu-standard": NodeTypes()})
    assert reason(profile, T0, inputs=same) is None
    assert reason(profile, T0, inputs=mixed) is None  # still one of the pool's types
    assert reason(profile, T0, inputs=none_ready) is None  # nothing to compare with
    why = reason(profile, T0, inputs=moved)
    assert why is not None and "instance type cpu-16x64" in why and "cpu-32x128" in why


def test_a_changed_gpu_product_means_measure_again():
    profile = measured("gpu-t4", gpuProduct="Tesla-T4")
    moved = ReprofileInputs(node_types={"gpu-t4": NodeTypes(frozenset({"g"}), frozenset({"NVIDIA-L4"}))})
    assert "GPU changed" in reason(profile, T0, inputs=moved)


def test_a_profile_that_records_no_node_type_is_not_measured_again_for_one():
    moved = ReprofileInputs(node_types={"cpu-standard": NodeTypes(frozenset({"cpu-32x128"}))})
    assert reason(measured(), T0, inputs=moved) is None


@pytest.mark.parametrize(("ratio", "since", "now", "fires"), [
    (1.2, None, 10_000, False),  # inside the band
    (2.0, T0 + 100, T0 + 100 + 599, False),  # outside, not yet for the window
    (2.0, T0 + 100, T0 + 100 + 600, True),
    (0.5, T0 + 100, T0 + 100 + 600, True),  # too fast counts as well
    (1.5, T0 + 100, T0 + 5000, False),  # the band's edge is inside
    (2.0, T0 - DAY, T0 + 599, False),  # counted from the measurement, not from before it
    (2.0, T0 - DAY, T0 + 600, True),
])
def test_calibration_outside_the_band_for_longer_than_the_window(ratio, since, now, fires):
    inputs = ReprofileInputs(calibration={"cpu-standard": CalibrationReading(ratio, since)}, calibration_window_s=600)
    why = reason(measured(), now, inputs=inputs)
    assert (why is not None) == fires
    if fires:
        assert f"calibration {ratio:.3g}" in why and "[0.67, 1.5]" in why


def test_several_reasons_are_all_given():
    why = reason(measured(key="old", image="old:1"), T0 + 31 * DAY)
    assert why.count("; ") == 2
    assert all(x in why for x in ("more than 30d ago", "benchmark settings changed", "worker image changed"))


# -- the plan: the old profile serves until the new one is recorded -----------------------------

def plan(obj, *, profiles, jobs=None, now, inputs=None):
    return plan_inference_deployment(
        obj, pools=POOLS, profiles=profiles, jobs=jobs or {}, children={}, service_names=set(),
        settings=SETTINGS, now=now, fingerprint=deployment_fingerprint, reprofile=inputs)


def state_of(p, pool):
    return next(s for s in p.status["profiles"] if s["pool"] == pool)


AGED = {"maxAge": "1h"}


def test_a_profile_past_max_age_starts_a_job_and_keeps_deciding_with_the_old_profile():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 3000))}
    p = plan(infd(benchmark=AGED), profiles=profiles, now=rfc(T0 + 3600))
    (job,) = p.jobs_to_create
    assert job["metadata"]["labels"][names.LABEL_POOL] == "cpu-standard"
    assert job["metadata"]["labels"][names.LABEL_BENCHMARK_KEY] == benchmark_key(infd(benchmark=AGED).spec.benchmark,
                                                                                None)
    cpu = state_of(p, "cpu-standard")
    assert (cpu["state"], cpu["reason"]) == ("Measured", "Reprofiling")
    assert cpu["name"] == profiles["cpu-standard"].metadata.name
    assert "is used until the new one is recorded" in cpu["message"]
    assert p.decision is not None and p.decision.feasible  # decided with the old profile
    assert c.get_condition(p.status["conditions"], c.PROFILED)["status"] == c.TRUE
    (event,) = [e for e in p.events if e.reason == "Reprofiling"]
    assert event.job == job["metadata"]["name"] and "more than 1h ago" in event.message
    assert not [e for e in p.events if e.reason == "BenchmarkStarted"]
    # The gpu profile gets too old 3000 s after the cpu one: reconcile again then.
    assert p.recheck_after == pytest.approx(3000)


def test_reprofiling_is_announced_once_not_per_reconcile():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 3600))}
    first = plan(infd(benchmark=AGED), profiles=profiles, now=rfc(T0 + 3600))
    (job,) = first.jobs_to_create
    running = {"cpu-standard": JobState(job["metadata"]["name"], active=True, uid="u1")}
    again = plan(infd(benchmark=AGED, status=first.status), profiles=profiles, jobs=running, now=rfc(T0 + 3700))
    assert not again.jobs_to_create and not again.jobs_to_delete
    assert again.events == []
    assert state_of(again, "cpu-standard")["reason"] == "Reprofiling"
    assert "is measuring" in state_of(again, "cpu-standard")["message"]


def test_the_new_profile_landing_ends_reprofiling_with_a_profiled_event():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 3600))}
    first = plan(infd(benchmark=AGED), profiles=profiles, now=rfc(T0 + 3600))
    landed = {**profiles, "cpu-standard": measured(at=rfc(T0 + 3650))}
    done = {"cpu-standard": JobState("j", succeeded=True, uid="u1", recorded=rfc(T0 + 3650))}
    after = plan(infd(benchmark=AGED, status=first.status), profiles=landed, jobs=done, now=rfc(T0 + 3660))
    assert not after.jobs_to_create and not after.jobs_to_delete
    assert "reason" not in state_of(after, "cpu-standard")
    assert [e.reason for e in after.events if e.reason in ("Profiled", "Reprofiling")] == ["Profiled"]


def test_a_finished_job_whose_profile_is_due_again_is_deleted_and_a_new_one_started():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 7200))}
    done = {"cpu-standard": JobState("hp-bench-x", succeeded=True, uid="u1", recorded=MEASURED_AT)}
    p = plan(infd(benchmark=AGED), profiles=profiles, jobs=done, now=rfc(T0 + 7200))
    assert p.jobs_to_delete == [("hp-bench-x", "u1")]
    assert len(p.jobs_to_create) == 1 and [e.reason for e in p.events if e.job] == ["Reprofiling"]


def test_a_result_not_yet_seen_is_waited_for_not_measured_again():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 7200))}
    # The Job recorded a newer profile than the one the operator has seen yet.
    done = {"cpu-standard": JobState("j", succeeded=True, uid="u1", recorded=rfc(T0 + 7100))}
    p = plan(infd(benchmark=AGED), profiles=profiles, jobs=done, now=rfc(T0 + 7200))
    assert not p.jobs_to_create and not p.jobs_to_delete
    assert "being recorded" in state_of(p, "cpu-standard")["message"]


def test_a_failed_reprofile_keeps_the_old_profile_and_warns_once():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4", at=rfc(T0 + 3600))}
    failed = {"cpu-standard": JobState("j", failed=True, reason="Timeout", message="ran out of time")}
    first = plan(infd(benchmark=AGED), profiles=profiles, jobs=failed, now=rfc(T0 + 3600))
    assert not first.jobs_to_create and not first.jobs_to_delete  # no retry loop: until the Job's TTL
    cpu = state_of(first, "cpu-standard")
    assert (cpu["state"], cpu["reason"]) == ("Measured", "ReprofileFailed") and "Timeout" in cpu["message"]
    assert first.decision is not None and first.decision.feasible
    assert [e.reason for e in first.events if e.type == "Warning"] == ["ReprofileFailed"]
    again = plan(infd(benchmark=AGED, status=first.status), profiles=profiles, jobs=failed, now=rfc(T0 + 3700))
    assert again.events == []


def test_a_changed_node_type_starts_a_reprofile_in_the_plan():
    profiles = {"cpu-standard": measured(instanceType="cpu-16x64"), "gpu-t4": measured("gpu-t4")}
    inputs = ReprofileInputs(node_types={"cpu-standard": NodeTypes(frozenset({"cpu-32x128"}))})
    p = plan(infd(), profiles=profiles, now=rfc(T0 + 60), inputs=inputs)
    assert [j["metadata"]["labels"][names.LABEL_POOL] for j in p.jobs_to_create] == ["cpu-standard"]
    assert "node type changed" in next(e for e in p.events if e.reason == "Reprofiling").message


def test_calibration_out_of_band_starts_a_reprofile_in_the_plan():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4")}
    inputs = ReprofileInputs(calibration={"gpu-t4": CalibrationReading(2.0, T0 + 10)}, calibration_window_s=300)
    assert not plan(infd(), profiles=profiles, now=rfc(T0 + 200), inputs=inputs).jobs_to_create
    p = plan(infd(), profiles=profiles, now=rfc(T0 + 310), inputs=inputs)
    assert [j["metadata"]["labels"][names.LABEL_POOL] for j in p.jobs_to_create] == ["gpu-t4"]


def test_no_trigger_no_job_and_the_idle_plan_is_silent():
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4")}
    first = plan(infd(), profiles=profiles, now=rfc(T0 + 60))
    again = plan(infd(status=first.status), profiles=profiles, now=rfc(T0 + 120))
    assert not again.jobs_to_create and not again.jobs_to_delete and again.events == []
    assert again.status == first.status


# -- a deleted profile is measured again at once -------------------------------------------------

def test_a_deleted_profile_is_measured_again_even_while_its_finished_job_exists():
    profiles = {"gpu-t4": measured("gpu-t4")}
    done = {"cpu-standard": JobState("hp-bench-x", succeeded=True, uid="u1", recorded=MEASURED_AT)}
    p = plan(infd(), profiles=profiles, jobs=done, now=rfc(T0 + 60))
    assert p.jobs_to_delete == [("hp-bench-x", "u1")]
    (job,) = p.jobs_to_create
    assert job["metadata"]["labels"][names.LABEL_POOL] == "cpu-standard"
    assert state_of(p, "cpu-standard")["state"] == "Pending"
    assert [e.reason for e in p.events if e.job] == ["BenchmarkStarted"]


def test_a_finished_job_not_yet_recorded_is_waited_for():
    done = {"cpu-standard": JobState("hp-bench-x", succeeded=True, uid="u1")}
    p = plan(infd(), profiles={"gpu-t4": measured("gpu-t4")}, jobs=done, now=rfc(T0 + 60))
    assert not p.jobs_to_delete and not p.jobs_to_create
    assert "being recorded" in state_of(p, "cpu-standard")["message"]


# -- what the reconciler feeds the triggers -----------------------------------------------------

def test_a_job_says_its_uid_and_what_it_recorded():
    found = job_state({"metadata": {"name": "j", "uid": "u1", "annotations": {names.ANNOTATION_RECORDED: MEASURED_AT}},
                       "status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    assert (found.uid, found.recorded, found.succeeded) == ("u1", MEASURED_AT, True)


def infd_body(name, **benchmark):
    body = copy.deepcopy(SEED.to_dict())
    body["metadata"].update(name=name, namespace="default", resourceVersion="1")
    body["spec"]["benchmark"] = {**body["spec"]["benchmark"], **benchmark}
    return body


def test_the_state_knows_which_benchmark_keys_the_deployments_of_a_model_ask_for():
    state = ClusterState()
    digest = SEED.spec.model.digest
    state.put_infd(infd_body("a"))
    state.put_infd(infd_body("b", batchSizes=[1, 10]))
    other = benchmark_key(infd(benchmark={"batchSizes": [1, 10]}).spec.benchmark, None)
    assert state.benchmark_keys("default", digest) == {KEY, other}
    state.put_infd({**infd_body("b"), "metadata": {**infd_body("b")["metadata"], "resourceVersion": "2"}})
    assert state.benchmark_keys("default", digest) == {KEY}
    state.drop_infd("default", "a")
    state.drop_infd("default", "b")
    assert state.benchmark_keys("default", digest) == frozenset()


def node(name, instance_type, ready=True, version="1"):
    labels = {"hybridplace.io/pool": "cpu-standard", names.NODE_LABEL_INSTANCE_TYPE: instance_type}
    return {"metadata": {"name": name, "resourceVersion": version, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_the_state_gives_each_pools_ready_node_types_and_sees_a_label_change():
    state = ClusterState()
    for body in POOLS.values():
        state.put_pool({**body.to_dict(), "metadata": {**body.to_dict()["metadata"], "resourceVersion": "1"}})
    assert state.put_node(node("n0", "cpu-16x64"))
    assert state.put_node(node("n1", "cpu-8x32", ready=False))
    assert state.node_types()["cpu-standard"].instance_types == {"cpu-16x64"}
    assert not state.put_node(node("n0", "cpu-16x64", version="2"))  # a heartbeat: nothing changed
    assert state.put_node(node("n0", "cpu-32x128", version="3"))  # kubectl label --overwrite
    assert state.node_types()["cpu-standard"].instance_types == {"cpu-32x128"}


def test_an_older_profile_version_never_replaces_a_newer_one_in_the_state():
    state = ClusterState()
    body = measured(at=rfc(T0 + 100)).to_dict()
    body["metadata"]["resourceVersion"] = "9"
    state.put_profile(body)
    stale = measured().to_dict()
    stale["metadata"]["resourceVersion"] = "8"
    state.put_profile(stale)
    assert state.profiles_for("default", SEED.spec.model.digest)["cpu-standard"].spec.measured_at == rfc(T0 + 100)


def job_body(uid, version, recorded=None):
    annotations = {names.ANNOTATION_DIGEST: SEED.spec.model.digest}
    if recorded:
        annotations[names.ANNOTATION_RECORDED] = recorded
    return {"metadata": {"name": "hp-bench-x", "namespace": "default", "uid": uid, "resourceVersion": version,
                         "labels": {names.LABEL_POOL: "cpu-standard"}, "annotations": annotations},
            "status": {"conditions": [{"type": "Complete", "status": "True"}] if recorded else []}}


def test_a_job_made_again_under_its_name_is_not_forgotten_for_the_old_ones_late_events():
    state = ClusterState()
    digest = SEED.spec.model.digest
    state.put_job(job_body("old", "10", recorded=MEASURED_AT))
    state.drop_job("default", "hp-bench-x")  # the operator deleted it ...
    state.put_job(job_body("new", "12"))  # ... and made a new one
    state.put_job(job_body("old", "10", recorded=MEASURED_AT))  # a late event of the old one
    assert state.jobs_for("default", digest)["cpu-standard"].uid == "new"
    assert state.drop_job("default", "hp-bench-x", uid="old") is None  # its deletion, reported late
    assert state.jobs_for("default", digest)["cpu-standard"].uid == "new"
    assert state.drop_job("default", "hp-bench-x", uid="new") == ("default", digest)
    assert state.jobs_for("default", digest) == {}


def test_the_calibration_in_status_feeds_the_reprofile_trigger():
    """The planner reads status.calibration (written by calibration.py) into the trigger: a
    pool whose ratio has been outside the band longer than the window is measured again."""
    profiles = {"cpu-standard": measured(), "gpu-t4": measured("gpu-t4")}
    first = plan(infd(), profiles=profiles, now=rfc(T0 + 60))
    status = {**first.status, "calibration": [{"pool": "gpu-t4", "ratio": 2.0, "outsideSince": rfc(T0 + 100),
                                               "sampledAt": rfc(T0 + 100)}]}
    assert not plan(infd(status=status), profiles=profiles, now=rfc(T0 + 400)).jobs_to_create
    p = plan(infd(status=status), profiles=profiles, now=rfc(T0 + 800))
    assert [j["metadata"]["labels"][names.LABEL_POOL] for j in p.jobs_to_create] == ["gpu-t4"]
    assert "calibration 2" in next(e for e in p.events if e.reason == "Reprofiling").message


@pytest.mark.parametrize(("remeasured", "outside_for", "fires"), [
    (0, 700, True),      # the window: 600 s
    (1, 700, False),     # measured again once while outside: 1,200 s
    (1, 1300, True),
    (3, 4700, False),    # 4,800 s
    (3, 4900, True),
    (20, 153_000, False),  # at most 2**8 x 600 s (about 43 h), however many times
    (20, 154_000, True),
])
def test_each_remeasurement_that_left_the_calibration_outside_doubles_the_wait(remeasured, outside_for, fires):
    # A gap that measuring again does not close (the model is off, not the profile) must not
    # re-benchmark the pool every window.
    reading = CalibrationReading(2.0, T0, remeasured)
    inputs = ReprofileInputs(calibration={"cpu-standard": reading}, calibration_window_s=600)
    why = reason(measured(), T0 + outside_for, inputs=inputs)
    assert (why is not None) == fires, why
    if fires and remeasured:
        assert f"{remeasured} re-measurement(s) ago too" in why
