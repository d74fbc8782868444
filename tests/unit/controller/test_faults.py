"""Crash points (HP_CRASH_AT, fault injection for the e2e crash tests): off by default, an unknown
name refused at startup, and each point sits exactly where its name says (before the profile is
written; after one child is created and before the next)."""

import json
import subprocess
import sys

import pytest
from cases.mock_api import MockApi, Reply
from hybridplace.controller import faults, reconcile
from test_reconcile_io import JOBS, PODS, PROFILES, RESULT, finished_job, pod_with, reconciler


class Crashed(Exception):
    pass


@pytest.fixture
def crashes(monkeypatch):
    """crash_point as armed by HP_CRASH_AT, raising instead of killing the test process."""
    reached = []

    def crash_point(name):
        assert name in faults.POINTS
        reached.append(name)
        if name in faults.armed():
            raise Crashed(name)

    monkeypatch.setattr(reconcile, "crash_point", crash_point)
    return reached


def test_off_by_default_and_an_unknown_point_is_refused_naming_the_variable():
    assert faults.armed({}) == frozenset()
    assert faults.armed({"HP_CRASH_AT": " children-half-created ,"}) == {"children-half-created"}
    with pytest.raises(ValueError, match=r"HP_CRASH_AT='children-half': unknown crash point children-half;"):
        faults.armed({"HP_CRASH_AT": "children-half"})


def test_an_armed_point_kills_the_process_with_sigkill_and_an_unarmed_one_does_nothing():
    code = ("from hybridplace.controller.faults import crash_point\n"
            "crash_point('children-half-created')\nprint('passed', flush=True)\n"
            "crash_point('job-done-profile-not-written')\nprint('not reached')\n")
    env = {"HP_CRASH_AT": "job-done-profile-not-written", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    assert done.stdout == "passed\n"
    assert "crash point job-done-profile-not-written reached" in done.stderr


def test_job_done_profile_not_written_stops_after_reading_the_result_and_before_the_create(crashes, monkeypatch):
    monkeypatch.setenv("HP_CRASH_AT", "job-done-profile-not-written")
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, Reply(201, {"kind": "ModelProfile", "metadata": {"name": "mp-x", "namespace": "ns"}}))
        api.on("PATCH", JOBS, Reply(200, {}))
        with pytest.raises(Crashed):
            reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert api.calls("GET", PODS) and not api.calls("POST", PROFILES)
        monkeypatch.delenv("HP_CRASH_AT")  # the restarted operator writes the profile
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert len(api.calls("POST", PROFILES)) == 1
    assert crashes == ["job-done-profile-not-written"] * 2
