"""The triton engine's time after the points, a server that dies mid-run, serve's folders, and
the dtype check that only Triton needs (review fixes)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import pytest
from hybridplace_worker.errors import Reason, WorkerError


def _server(tmp_path, seconds: float):
    from hybridplace_worker.triton_server import TritonProcess

    server = TritonProcess(["x"], {}, http_url="http://127.0.0.1:1", log_path=tmp_path / "log")
    server.proc = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])
    return server


def test_a_server_that_dies_mid_run_is_a_server_failure_not_an_input_mismatch(tmp_path):
    # The connection breaks before the dying process can be reaped: poll() still said "running".
    from hybridplace_worker.engine_triton import _server_error

    server = _server(tmp_path, 0.5)
    try:
        err = _server_error(ConnectionResetError(104, "Connection reset by peer"), 4, server)
    finally:
        server.proc.kill()
        server.proc.wait()
    assert err.reason == Reason.SERVER_START_FAILED and "exited" in err.message


def test_a_rejected_request_with_the_server_up_is_still_an_input_mismatch_at_once(tmp_path):
    from hybridplace_worker.engine_triton import _server_error

    server = _server(tmp_path, 30)
    try:
        t0 = time.monotonic()
        err = _server_error(RuntimeError("HTTP 400: unexpected shape for input 'input'"), 2, server)
        assert time.monotonic() - t0 < 1
        assert err.reason == Reason.INPUT_MISMATCH
        lost = _server_error(ConnectionRefusedError(111, "Connection refused"), 2, server, wait_s=0.1)
        assert lost.reason == Reason.SERVER_START_FAILED and "stopped answering" in lost.message
    finally:
        server.proc.kill()
        server.proc.wait()


def test_the_stop_grace_and_the_overhead_step_fit_the_time_left():
    from hybridplace_worker.engine_triton import overhead_step_seconds, stop_grace

    assert stop_grace(None) == 10
    assert stop_grace(lambda: 100.0) == 10
    assert stop_grace(lambda: 2.5) == 2.5
    assert stop_grace(lambda: -3.0) == 0.5
    assert overhead_step_seconds(0) == 0
    assert overhead_step_seconds(2) == pytest.approx(3.5)


def test_bench_keeps_time_after_the_points_for_the_overhead_step_and_the_stop(tmp_path, monkeypatch):
    # 8 s deadline, one point of 0.3 s: without the reserve (2 s request overhead + warm-up +
    # stats, ~3 s to stop the server) the points could use it all, and the run end as Timeout.
    import hybridplace_worker.engine_triton as engine_triton
    from hybridplace_worker.runner import run

    seen = {}

    def fake_engine(model, *, may_extend, time_left, workdir, on_overhead, **kwargs):
        seen.update(may_extend=may_extend(), time_left=time_left(), workdir=workdir)
        assert workdir.is_dir() and workdir.name.startswith("hp-triton-")
        on_overhead({"skipped": "too little time left"})
        return []

    monkeypatch.setattr(engine_triton, "run_triton_engine", fake_engine)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = tmp_path / "tl"
    code = run(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            "1,2",
            "--max-batch-size",
            "2",
            "--duration-seconds",
            "0.3",
            "--warmup-seconds",
            "0",
            "--deadline-seconds",
            "8",
            "--termination-log",
            str(log),
            "--output",
            str(tmp_path / "full.json"),
        ],
        started=None,
        handle_signals=False,
    )
    assert code == 0, log.read_text()
    assert seen["may_extend"] is False and 4 < seen["time_left"] <= 6
    assert not seen["workdir"].exists()  # the run's folder is removed with the run
    full = json.loads((tmp_path / "full.json").read_text())
    assert full["settings"]["requestOverhead"] == {"skipped": "too little time left"}


def test_serve_removes_stale_folders_of_dead_servers_and_keeps_live_ones(tmp_path):
    from hybridplace_worker.runner import PID_FILE, serve_workdir

    dead = subprocess.Popen(["true"])
    dead.wait()
    folders = {}
    for label, pid in (("dead", dead.pid), ("self", os.getpid()), ("live", os.getppid()), ("nopid", None)):
        folder = tmp_path / f"hp-serve-{label}"
        folder.mkdir()
        (folder / "repository").mkdir()
        if pid is not None:
            (folder / PID_FILE).write_text(f"{pid}\n")
        folders[label] = folder
    new = serve_workdir(tmp_path)
    assert (new / PID_FILE).read_text().strip() == str(os.getpid())
    assert not folders["dead"].exists() and not folders["self"].exists()
    assert folders["live"].exists() and folders["nopid"].exists()
    again = serve_workdir(tmp_path)  # a restart (the same pid, as pid 1 is in a container) replaces it
    assert not new.exists() and again.exists()


def test_a_serve_that_fails_before_exec_leaves_no_folder(tmp_path, monkeypatch):
    import hybridplace_worker.engine_triton as engine_triton
    from hybridplace_worker.runner import run

    def failing_build(*args, **kwargs):
        raise WorkerError(Reason.INPUT_MISMATCH, "no")

    monkeypatch.setattr(engine_triton, "build_repository", failing_build)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    log = tmp_path / "tl"
    code = run(
        ["serve", "--model", "builtin:mlp", "--tritonserver", "/bin/true", "--termination-log", str(log)],
        started=None,
        handle_signals=False,
    )
    assert code == 12 and json.loads(log.read_bytes())["reason"] == "InputMismatch"
    assert not list(tmp_path.glob("hp-serve-*"))


def test_a_float64_output_is_fine_for_torch_and_named_for_triton():
    import torch
    from hybridplace_worker.engine_triton import require_servable
    from hybridplace_worker.models import LoadedModel, check_model_inputs
    from hybridplace_worker.spec import InputSpec

    class Double(torch.nn.Module):
        def forward(self, x):
            return x.double() * 2

    spec = (InputSpec("x", (3,), "float32"),)
    model = LoadedModel(Double().eval(), "m.pt", "sha256:" + "0" * 64, "torchscript", spec)
    outputs = check_model_inputs(model)  # the torch engine measures it
    assert [(o.name, o.dtype) for o in outputs] == [("output", "float64")]
    with pytest.raises(WorkerError) as err:
        require_servable(model, outputs)
    assert err.value.reason == Reason.INPUT_MISMATCH
    assert "output output" in err.value.message and "float64" in err.value.message
