"""The operator's in-memory view: how a benchmark Job's state and a profile's validity are read
from the objects the watches bring."""

from hybridplace.controller.state import ANNOTATION_FAILURE_MESSAGE, ANNOTATION_FAILURE_REASON, job_state


def job(condition: str | None, annotations: dict | None = None) -> dict:
    conditions = [{"type": condition, "status": "True"}] if condition else []
    return {"metadata": {"name": "hp-bench-x", "annotations": annotations or {}},
            "status": {"conditions": conditions}}


def test_a_running_job_is_active():
    state = job_state(job(None))
    assert state.active and not state.failed and not state.succeeded


def test_a_failed_job_counts_as_failed_only_once_its_reason_is_read():
    assert not job_state(job("Failed")).failed
    read = job_state(job("Failed", {ANNOTATION_FAILURE_REASON: "NoDevice", ANNOTATION_FAILURE_MESSAGE: "no GPU"}))
    assert (read.failed, read.reason, read.message) == (True, "NoDevice", "no GPU")


def test_a_job_that_completed_without_a_usable_result_is_failed_not_pending():
    state = job_state(job("Complete", {ANNOTATION_FAILURE_REASON: "InvalidResult",
                                       ANNOTATION_FAILURE_MESSAGE: "points: missing"}))
    assert (state.active, state.failed, state.reason) == (False, True, "InvalidResult")


def test_a_profile_is_parsed_once_and_why_it_is_unusable_is_kept_for_its_status():
    import copy
    from pathlib import Path

    import yaml
    from hybridplace.controller.state import ClusterState

    seed = Path(__file__).resolve().parents[3] / "examples" / "seed" / "modelprofiles.yaml"
    body = next(d for d in yaml.safe_load_all(seed.read_text()) if d)
    body["metadata"].setdefault("namespace", "default")
    state = ClusterState()
    key = state.put_profile(body)
    ref = ("default", body["metadata"]["name"])
    assert key == ("default", body["spec"]["model"]["digest"]) and state.profile_errors[ref] is None
    assert state.profiles_for(*key)
    broken = copy.deepcopy(body)
    broken["spec"]["points"] = []
    assert state.put_profile(broken) is None
    assert "points" in state.profile_errors[ref]
    assert not state.profiles_for(*key)  # the usable version it replaced is gone, in the same step
    state.drop_profile(*ref)
    assert ref not in state.profile_errors


# -- duplicate ModelProfiles: keyed by object, resolved by measuredAt --------------------------


def _profile(name, measured_at):
    from pathlib import Path

    import yaml

    seed = Path(__file__).resolve().parents[3] / "examples" / "seed" / "modelprofiles.yaml"
    body = next(d for d in yaml.safe_load_all(seed.read_text()) if d)
    body["metadata"] = {"name": name, "namespace": "default"}
    body["spec"]["measuredAt"] = measured_at
    return body


def test_deleting_a_duplicate_profile_keeps_the_one_that_remains():
    from hybridplace.controller.state import ClusterState

    state = ClusterState()
    first, second = _profile("mp-a", "2026-11-23T18:00:00Z"), _profile("mp-b", "2026-11-23T19:00:00Z")
    key = state.put_profile(first)
    state.put_profile(second)
    pool = first["spec"]["pool"]
    state.drop_profile("default", "mp-b")
    assert state.profiles_for(*key)[pool].metadata.name == "mp-a"  # the old code forgot both here
    state.put_profile(second)
    state.drop_profile("default", "mp-a")
    assert state.profiles_for(*key)[pool].metadata.name == "mp-b"


def test_duplicates_resolve_to_the_newest_measured_at_whatever_the_order_and_are_reported():
    from hybridplace.controller.state import ClusterState

    older, newer = _profile("mp-z-older", "2026-11-23T18:00:00Z"), _profile("mp-a-newer", "2026-11-23T19:00:00+01:00")
    newest = _profile("mp-m-newest", "2026-11-23T18:30:00Z")  # 19:00+01:00 is 18:00Z: mp-m is newest
    for order in ([older, newer, newest], [newest, older, newer], [newer, newest, older]):
        state = ClusterState()
        for body in order:
            key = state.put_profile(body)
        pool = older["spec"]["pool"]
        assert state.profiles_for(*key)[pool].metadata.name == "mp-m-newest"
        assert state.duplicate_profiles(*key) == {pool: ["mp-m-newest", "mp-a-newer", "mp-z-older"]}
        assert state.profile_superseded_by("default", "mp-z-older") == "mp-m-newest"
        assert state.profile_superseded_by("default", "mp-m-newest") is None


def test_the_plan_reports_duplicate_profiles_in_status_and_an_event():
    import copy

    from cases.long_status import POOLS, PROFILES, SEED
    from hybridplace.api import parse_object
    from hybridplace.config import Settings
    from hybridplace.controller.fingerprint import deployment_fingerprint
    from hybridplace.controller.plan import plan_inference_deployment

    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1)
    plan = plan_inference_deployment(
        parse_object(body), pools=POOLS, profiles=PROFILES, jobs={}, children={}, service_names=set(),
        settings=Settings(), now="2026-11-23T18:00:00Z", fingerprint=deployment_fingerprint,
        duplicate_profiles={"gpu-t4": ["mp-new", "mp-old"]})
    (gpu,) = [s for s in plan.status["profiles"] if s["pool"] == "gpu-t4"]
    assert gpu["reason"] == "DuplicateProfiles" and "using mp-new (newest measuredAt), not mp-old" in gpu["message"]
    assert any(e.reason == "DuplicateProfiles" and e.type == "Warning" for e in plan.events)


def test_nothing_is_left_in_memory_of_a_deleted_deployment_or_service():
    """Names come and go (CI makes thousands): the cache must not keep an empty entry for each."""
    from hybridplace.builders import names
    from hybridplace.controller.state import ClusterState

    state = ClusterState()
    for i in range(50):
        labels = {names.LABEL_INSTANCE: f"web-{i}", names.LABEL_POOL: "cpu"}
        meta = {"name": f"web-{i}-cpu", "namespace": "ns", "resourceVersion": "1", "labels": labels}
        state.put_deployment({"metadata": meta, "spec": {"replicas": 1}})
        state.put_service({"metadata": {**meta, "name": f"web-{i}"}})
        state.drop_deployment("ns", f"web-{i}-cpu")
        state.drop_service("ns", f"web-{i}")
    assert not state._children and not state._services and not state._service_owners


def test_the_reconciler_forgets_the_conflicts_of_a_deleted_inference_deployment():
    from hybridplace.config import Settings
    from hybridplace.controller.reconcile import Reconciler
    from hybridplace.controller.state import ClusterState
    from hybridplace.controller.workqueue import WorkQueue

    rec = Reconciler(None, ClusterState(), Settings(workers=1), WorkQueue())
    rec._note_conflicts("ns", "web", ["Service/web"], set())
    rec._note_rejected("ns", "web", {"Deployment/web-cpu": "422 Invalid"})
    rec._note_conflicts("ns", "other", [], set())
    assert rec._blocked("ns", "web") == ({"Service/web"}, set())
    rec.reconcile_inference_deployment("ns", "web")  # it is gone from the cache: deleted
    assert not rec._conflicts and not rec._rejected and not rec._collected
