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
