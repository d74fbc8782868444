"""`make cluster-up` / `make cluster-down` as a user runs them, on a second cluster beside the
session's one: warm start time (at most 60 s), reuse when healthy, nothing left after down, and
the session's cluster untouched by it."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


def make(target, name):
    return subprocess.run(["make", target], cwd=REPO, env=dict(os.environ, HP_CLUSTER=name),
                          capture_output=True, text=True, timeout=300)


def running(entry):
    """True if the recorded process (PID + start time) still exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{entry['pid']}/stat").read_text()
    except FileNotFoundError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[0] not in ("Z", "X") and int(fields[19]) == entry["start"]


def test_warm_cluster_up_reuse_and_down(local_cluster, report):
    # local_cluster first: the binaries are built and cached, so this start is a warm one.
    name = f"hp-lifecycle-{os.getpid()}"
    state_dir = Path(local_cluster.state_dir).parent / name
    started = time.monotonic()
    up = make("cluster-up", name)
    seconds = time.monotonic() - started
    report(f"warm `make cluster-up` of a second cluster beside it: {seconds:.1f} s (limit 60 s)")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "started in" in up.stdout and str(state_dir / "kubeconfig") in up.stdout
        state = json.loads((state_dir / "state.json").read_text())
        procs = list(state["processes"].values())
        assert len(procs) == len(state["components"]) >= 5
        assert all(running(p) for p in procs)
        # Its own ports: two clusters side by side do not collide.
        session_ports = json.loads(
            (Path(local_cluster.state_dir) / "state.json").read_text())["ports"]
        assert not set(state["ports"].values()) & set(session_ports.values())
        assert seconds <= 60, f"warm cluster-up took {seconds:.1f} s"

        again = make("cluster-up", name)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "already running" in again.stdout
        assert json.loads((state_dir / "state.json").read_text())["processes"] == \
            state["processes"]
    finally:
        started = time.monotonic()
        down = make("cluster-down", name)
        report(f"`make cluster-down` of that cluster: {time.monotonic() - started:.1f} s")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not [p for p in procs if running(p)]
    assert not state_dir.exists()
    # ...and only its own: the session's cluster beside it runs on.
    session = json.loads((Path(local_cluster.state_dir) / "state.json").read_text())["processes"]
    assert [c for c, p in session.items() if not running(p)] == []
