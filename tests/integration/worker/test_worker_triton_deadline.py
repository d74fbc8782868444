"""The triton engine near its deadline: time kept for what follows the points, and no
temporary folder left when the deadline (or SIGTERM) ends the run (review fixes)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hybridplace_worker.errors import WorkerError
from hybridplace_worker.triton_server import locate_tritonserver

pytestmark = pytest.mark.triton


@pytest.fixture(autouse=True, scope="module")
def _needs_tritonserver():
    try:
        locate_tritonserver()
    except WorkerError as exc:
        pytest.skip(f"no tritonserver: {exc.message}")


def test_a_run_that_uses_its_spare_time_still_ends_within_the_deadline(run_cli, tmp_path):
    # Points that never become stable extend while the deadline allows: it must leave the
    # request overhead step and the server's stop their time, or the run ends as Timeout after
    # measuring every point.
    rc, doc, out, err = run_cli(
        ["bench", "--engine", "triton", "--model", "builtin:mlp", "--batch-sizes", "1,2",
         "--duration-seconds", "0.3", "--warmup-seconds", "0", "--max-windows", "1000",
         "--stability-threshold", "0.0001", "--deadline-seconds", "30", "--output", str(tmp_path / "full.json")],
        timeout=90,
    )
    assert rc == 0, (doc, err[-2000:])
    assert doc["ok"] is True and len(doc["points"]) == 2
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["elapsedSeconds"] < 30
    overhead = full["settings"]["requestOverhead"]
    assert "requestOverheadMs" in overhead or "skipped" in overhead, overhead
    assert not list(tmp_path.glob("hp-triton-*"))


def test_a_run_ended_by_sigterm_leaves_no_temporary_folder(tmp_path):
    # expire() (the deadline, SIGTERM) leaves by os._exit: the engine's TemporaryDirectory
    # never cleaned up after it. SIGTERM once the server is ready: mid-measurement, for sure.
    log, stderr = tmp_path / "tl", tmp_path / "stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hybridplace_worker", "bench", "--engine", "triton", "--model", "builtin:mlp",
             "--batch-sizes", "1", "--duration-seconds", "0.3", "--warmup-seconds", "0",
             "--request-overhead-seconds", "0", "--max-windows", "100000", "--stability-threshold", "0.0001",
             "--deadline-seconds", "120", "--output", "", "--termination-log", str(log)],
            stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "TMPDIR": str(tmp_path)},
        )
    try:
        deadline = time.monotonic() + 90
        while b"ready in" not in stderr.read_bytes() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(tmp_path.glob("hp-triton-*")), stderr.read_text()[-2000:]  # the run's folder exists
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    doc = json.loads(log.read_bytes())
    assert (rc, doc["reason"]) == (124, "Timeout"), stderr.read_text()[-2000:]
    assert not list(tmp_path.glob("hp-triton-*")), list(tmp_path.iterdir())
