"""The triton engine and serve against a real local tritonserver (the nvidia-pytriton wheel's)."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from hybridplace_worker.errors import WorkerError
from hybridplace_worker.result import expand_compact
from hybridplace_worker.triton_server import free_ports, locate_tritonserver
from worker_schema_check import assert_valid
from worker_support import FAST

pytestmark = pytest.mark.triton


@pytest.fixture(autouse=True, scope="module")
def _needs_tritonserver():
    try:
        locate_tritonserver()
    except WorkerError as exc:
        pytest.skip(f"no tritonserver: {exc.message}")


@pytest.mark.parametrize("protocol,model", [("http", "mlp"), ("grpc", "transformer")])
def test_triton_engine_measures_every_point(protocol, model, run_inprocess):
    rc, doc, out = run_inprocess(
        [
            "bench",
            "--engine",
            "triton",
            "--protocol",
            protocol,
            "--model",
            f"builtin:{model}",
            "--batch-sizes",
            "1,4",
            "--concurrency",
            "1,2",
            *FAST,
            "--request-overhead-seconds",
            "0.5",
        ]
    )
    assert rc == 0, doc
    assert_valid(doc)
    assert doc["engine"] == "triton"
    points = expand_compact(doc)
    assert [(p["batchSize"], p["concurrency"]) for p in points] == [(1, 1), (1, 2), (4, 1), (4, 2)]
    assert all(p["p50Ms"] > 0 and p["throughputRps"] > 0 for p in points)
    full = json.loads(out)
    assert full["settings"]["protocol"] == protocol
    assert full["settings"]["triton"]["maxBatchSize"] == 4 and full["settings"]["triton"]["instanceKind"] == "cpu"
    # Then the model was kept busy with single-item requests: what they cost beyond the points'
    # time per item is in the compact result (a ModelProfile's spec.requestOverheadMs).
    facts = full["settings"]["requestOverhead"]
    assert facts["connections"] == 8 and facts["saturatedRps"] > 0 and 1 <= facts["meanBatch"] <= 4
    assert doc["requestOverheadMs"] == facts["requestOverheadMs"] >= 0


def _get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def _wait_ready(proc, http_port, host="127.0.0.1"):
    """Until the served model answers ready (bounded: 120 s); fails with serve's stderr if it exits."""
    for _ in range(600):
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        try:
            if _get(f"http://{host}:{http_port}/v2/models/model/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail("serve did not become ready in 120 s")


def _stop(proc):
    proc.send_signal(signal.SIGINT)  # serve exec'd tritonserver: this PID is the server
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_serve_runs_the_decision_and_answers_like_the_model(tmp_path):
    import tritonclient.http as th
    from hybridplace_worker.catalog import BUILTIN_INPUTS
    from hybridplace_worker.models import build_builtin, synthetic_inputs

    http_port, grpc_port, metrics_port = free_ports(3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridplace_worker",
            "serve",
            "--model",
            "builtin:mlp",
            "--address",
            "127.0.0.1",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
            "--max-batch-size",
            "8",
            "--preferred-batch-size",
            "4,8",
            "--max-queue-delay-ms",
            "1.5",
            "--instances",
            "2",
            "--threads",
            "1",
            "--repository-dir",
            str(tmp_path / "serve"),
            "--termination-log",
            str(tmp_path / "tl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        _wait_ready(proc, http_port)
        config = json.loads(_get(base + "/v2/models/model/config")[1])
        assert config["max_batch_size"] == 8
        assert config["dynamic_batching"]["preferred_batch_size"] == [4, 8]
        assert int(config["dynamic_batching"]["max_queue_delay_microseconds"]) == 1500
        assert config["instance_group"][0]["count"] == 2 and config["instance_group"][0]["kind"] == "KIND_CPU"

        x = synthetic_inputs(BUILTIN_INPUTS["mlp"], 3)[0]
        client = th.InferenceServerClient(f"127.0.0.1:{http_port}")
        inp = th.InferInput("input", list(x.shape), "FP32")
        inp.set_data_from_numpy(x.numpy())
        got = client.infer("model", [inp]).as_numpy("output")
        client.close()
        import torch

        with torch.inference_mode():
            want = build_builtin("mlp")(x).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

        status, metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and b'nv_inference_request_success{model="model"' in metrics
    finally:
        _stop(proc)
    assert not (tmp_path / "tl").exists()  # success writes no termination message


def _has_ipv6_loopback():
    import socket

    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback (::1) on this host")
def test_serve_on_an_ipv6_pod_ip_answers_on_all_three_endpoints(tmp_path):
    """A single-stack IPv6 pod's HP_ADDRESS is an IPv6 address: Triton must bind HTTP, gRPC and
    metrics to it (given it bare, it bound 255.255.255.255 and its gRPC server exited)."""
    import socket

    http_port, grpc_port, metrics_port = free_ports(3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridplace_worker",
            "serve",
            "--model",
            "builtin:delay",
            "--address",
            "::1",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
            "--repository-dir",
            str(tmp_path / "serve"),
            "--termination-log",
            str(tmp_path / "tl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(proc, http_port, host="[::1]")
        status, metrics = _get(f"http://[::1]:{metrics_port}/metrics")
        assert status == 200 and b"nv_inference" in metrics
        with socket.create_connection(("::1", grpc_port), timeout=5):
            pass
    finally:
        _stop(proc)


def test_serve_dry_run_prints_the_command(run_cli, tmp_path):
    rc, doc, out, err = run_cli(
        [
            "serve",
            "--model",
            "builtin:resnet",
            "--dry-run",
            "--http-port",
            "9000",
            "--repository-dir",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0, err
    assert doc is None
    plan = json.loads(out)
    assert "--http-port=9000" in plan["command"] and "--http-address=0.0.0.0" in plan["command"]
    assert (tmp_path / "r" / "repository" / "model" / "config.pbtxt").is_file()


def test_serve_keeps_a_downloaded_model_in_its_repository_only(tiny_model_url, tmp_path):
    """`serve` execs tritonserver, so nothing cleans up after it: the model fetched by URL is in the
    repository, and its download folder is gone by the time the server answers."""
    import os

    from hybridplace_worker.triton_server import free_ports

    url, path, digest = tiny_model_url
    private = tmp_path / "tmp"
    private.mkdir()
    http_port, grpc_port, metrics_port = free_ports(3)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridplace_worker",
            "serve",
            "--model",
            url,
            "--digest",
            digest,
            "--input",
            "x:4:float32",
            "--address",
            "127.0.0.1",
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
            "--threads",
            "1",
            "--repository-dir",
            str(tmp_path / "r"),
            "--termination-log",
            str(tmp_path / "tl"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(private)},
    )
    try:
        _wait_ready(proc, http_port)
        assert not list(private.glob("hp-model-*")), "the download folder outlived the exec"
        served = [
            f for f in (tmp_path / "r" / "repository").rglob("*") if f.is_file() and f.read_bytes() == path.read_bytes()
        ]
        assert served, "the downloaded model is not in the repository"
    finally:
        _stop(proc)


def test_tritonserver_does_not_outlive_a_killed_worker(tmp_path):
    import os
    import re

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridplace_worker",
            "bench",
            "--engine",
            "triton",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            "1",
            "--duration-seconds",
            "60",
            "--termination-log",
            str(tmp_path / "tl"),
            "--output",
            "",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # a killed worker cannot remove its repository
    )
    server_pid = None
    try:
        for line in proc.stderr:  # bounded by the worker's own deadline (600 s default)
            found = re.search(r"tritonserver pid (\d+) ready", line)
            if found:
                server_pid = int(found.group(1))
                break
        assert server_pid is not None, "the worker never reported a ready tritonserver"
        proc.kill()  # SIGKILL: no handler, no cleanup in the worker
        proc.wait(timeout=30)
        for _ in range(150):  # up to 30 s for the kernel's parent-death signal to land
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            with open(f"/proc/{server_pid}/stat") as f:
                if f.read().split()[2] == "Z":  # dead, not yet reaped by init
                    break
            time.sleep(0.2)
        else:
            pytest.fail(f"tritonserver {server_pid} outlived its killed worker")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_triton_engine_serves_a_torch_export_file(run_inprocess, tmp_path):
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval()
    program = torch.export.export(
        module, (torch.randn(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},)
    )
    path = tmp_path / "tiny.pt2"
    torch.export.save(program, str(path))
    rc, doc, out = run_inprocess(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            str(path),
            "--format",
            "torch-export",
            "--input",
            "x:4:float32",
            "--batch-sizes",
            "1,3",
            *FAST,
        ]
    )
    assert rc == 0, doc
    assert doc["model"]["format"] == "torch-export" and len(doc["points"]) == 2


# -- near the deadline: time kept for what follows the points; no temporary folder left --------


def test_a_run_that_uses_its_spare_time_still_ends_within_the_deadline(run_cli, tmp_path):
    # Points that never become stable extend while the deadline allows: it must leave the
    # request overhead step and the server's stop their time, or the run ends as Timeout after
    # measuring every point.
    rc, doc, out, err = run_cli(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            "1,2",
            "--duration-seconds",
            "0.3",
            "--warmup-seconds",
            "0",
            "--max-windows",
            "1000",
            "--stability-threshold",
            "0.0001",
            "--deadline-seconds",
            "30",
            "--output",
            str(tmp_path / "full.json"),
        ],
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
            [
                sys.executable,
                "-m",
                "hybridplace_worker",
                "bench",
                "--engine",
                "triton",
                "--model",
                "builtin:mlp",
                "--batch-sizes",
                "1",
                "--duration-seconds",
                "0.3",
                "--warmup-seconds",
                "0",
                "--request-overhead-seconds",
                "0",
                "--max-windows",
                "100000",
                "--stability-threshold",
                "0.0001",
                "--deadline-seconds",
                "120",
                "--output",
                "",
                "--termination-log",
                str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "TMPDIR": str(tmp_path)},
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
