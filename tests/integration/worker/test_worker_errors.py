"""Every reason code: a bad input exits non-zero, in time, with exactly one JSON error."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hybridplace_worker.catalog import builtin_digest
from hybridplace_worker.errors import EXIT_CODES, Reason
from worker_schema_check import assert_valid
from worker_support import FAST


def assert_error(rc, doc, reason, *fragments):
    assert doc is not None, "no termination log written"
    assert_valid(doc)
    assert doc["ok"] is False and doc["reason"] == reason, doc
    assert rc == EXIT_CODES[Reason(reason)]
    for fragment in fragments:
        assert fragment in doc["message"], doc["message"]


def test_model_not_found_missing_file(run_inprocess, tmp_path):
    rc, doc, out = run_inprocess(["bench", "--model", str(tmp_path / "nope.pt"), "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "ModelNotFound", "nope.pt")
    assert json.loads(out) == doc  # the same single document on stdout


def test_model_not_found_http_404(run_inprocess, http_dir):
    base, _ = http_dir
    rc, doc, _ = run_inprocess(["bench", "--model", f"{base}/missing.pt", "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "ModelNotFound", "HTTP 404")


def test_model_not_found_unreachable(run_inprocess):
    from hybridplace_worker.triton_server import free_ports

    port = free_ports(1)[0]  # nothing listens there
    rc, doc, _ = run_inprocess(["bench", "--model", f"http://127.0.0.1:{port}/m.pt", "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "ModelNotFound", "unreachable")


def test_a_downloaded_model_leaves_nothing_in_tmp_nor_does_a_failed_download(
    run_inprocess, http_dir, tiny_model_url, tmp_path, monkeypatch
):
    """A model fetched by URL lives as long as the run; a 404, an unreachable host or an oversized
    body leaves no file and no folder behind (a laptop's /tmp must not collect 2 GB models)."""
    import tempfile

    from hybridplace_worker.triton_server import free_ports

    base, _ = http_dir
    url, _, digest = tiny_model_url
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # where mkdtemp and friends create
    rc, doc, _ = run_inprocess(
        ["bench", "--model", url, "--digest", digest, "--input", "x:4:float32", "--batch-sizes", "1", *FAST]
    )
    assert rc == 0 and doc["ok"] is True and doc["model"]["digest"] == digest, doc
    assert not list(private.iterdir())
    port = free_ports(1)[0]
    for bad, fragment in ((f"{base}/missing.pt", "HTTP 404"), (f"http://127.0.0.1:{port}/m.pt", "unreachable")):
        rc, doc, _ = run_inprocess(["bench", "--model", bad, "--input", "x:4:float32", *FAST])
        assert_error(rc, doc, "ModelNotFound", fragment)
        assert not list(private.iterdir()), bad
    monkeypatch.setenv("HP_MAX_MODEL_BYTES", "10")
    rc, doc, _ = run_inprocess(["bench", "--model", url, "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "ModelNotFound", "larger than 10 bytes")
    assert not list(private.iterdir())


def test_model_not_found_unknown_builtin_and_garbage_file(run_inprocess, tmp_path):
    rc, doc, _ = run_inprocess(["bench", "--model", "builtin:gpt", *FAST])
    assert_error(rc, doc, "ModelNotFound", "builtin:mlp")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a model")
    rc, doc, _ = run_inprocess(["bench", "--model", str(junk), "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "ModelNotFound", "torchscript")


def test_digest_mismatch_file(run_inprocess, tiny_torchscript):
    path, digest = tiny_torchscript
    wrong = "sha256:" + "0" * 64
    rc, doc, _ = run_inprocess(["bench", "--model", str(path), "--digest", wrong, "--input", "x:4:float32", *FAST])
    assert_error(rc, doc, "DigestMismatch", digest, wrong)


def test_digest_mismatch_builtin_version(run_inprocess):
    rc, doc, _ = run_inprocess(["bench", "--model", "builtin:resnet", "--digest", builtin_digest("mlp"), *FAST])
    assert_error(rc, doc, "DigestMismatch", builtin_digest("resnet"))


def test_input_mismatch(run_inprocess, tiny_torchscript):
    path, digest = tiny_torchscript
    rc, doc, _ = run_inprocess(["bench", "--model", str(path), "--digest", digest, "--input", "x:5:float32", *FAST])
    assert_error(rc, doc, "InputMismatch", "x:5:float32")


def test_input_mismatch_static_batch_export(run_inprocess, tmp_path):
    import torch

    ep = torch.export.export(torch.nn.Linear(4, 3).eval(), (torch.randn(2, 4),))  # batch fixed at 2
    path = tmp_path / "static.pt2"
    torch.export.save(ep, str(path))
    rc, doc, _ = run_inprocess(
        ["bench", "--model", str(path), "--format", "torch-export", "--input", "x:4:float32", *FAST]
    )
    assert_error(rc, doc, "InputMismatch", "batch size 1")


def test_out_of_memory(run_inprocess):
    # 10^8 images of 3x32x32 float32 = 1.2 TB: more than this host (or any) can allocate.
    rc, doc, _ = run_inprocess(["bench", "--model", "builtin:resnet", "--batch-sizes", "1,100000000", *FAST])
    assert_error(rc, doc, "OutOfMemory", "batch size 100000000")


def test_no_device(run_cli):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc, doc, _, err = run_cli(["bench", "--model", "builtin:mlp", "--device", "cuda", *FAST])
    assert_error(rc, doc, "NoDevice", "--device cpu")
    rc, doc, _, err = run_cli(["serve", "--model", "builtin:mlp", "--instance-kind", "gpu", "--dry-run"])
    assert_error(rc, doc, "NoDevice")


def test_server_start_failed_when_the_binary_exits(run_inprocess, tmp_path):
    fake = tmp_path / "bin" / "tritonserver"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'E1123 model_repository_manager: failed to load'\nexit 1\n")
    fake.chmod(0o755)
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            "builtin:mlp",
            "--tritonserver",
            str(fake),
            "--batch-sizes",
            "1",
            *FAST,
        ]
    )
    assert_error(rc, doc, "ServerStartFailed", "exited with code 1", "failed to load")


def test_server_start_failed_when_never_ready_and_the_server_is_stopped(run_inprocess, tmp_path):
    fake = tmp_path / "bin" / "tritonserver"
    fake.parent.mkdir()
    pidfile = tmp_path / "pid"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    fake.chmod(0o755)
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            "builtin:mlp",
            "--tritonserver",
            str(fake),
            "--server-start-timeout-seconds",
            "2",
            "--batch-sizes",
            "1",
            *FAST,
        ]
    )
    assert_error(rc, doc, "ServerStartFailed", "not ready within 2 s")
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped by PID, not left behind


def test_timeout_while_the_download_hangs(run_cli, http_dir, tmp_path):
    base, _ = http_dir
    rc, doc, _, err = run_cli(
        [
            "bench",
            "--model",
            f"{base}/stall/model.pt",
            "--input",
            "x:4:float32",
            "--deadline-seconds",
            "6",
            "--batch-sizes",
            "1",
            *FAST,
        ],
        timeout=120,
    )
    assert_error(rc, doc, "Timeout", "--deadline-seconds 6")
    assert not list(tmp_path.glob("hp-model-*")), "the download folder outlived the deadline"  # run_cli's TMPDIR


def test_sigterm_ends_with_one_timeout_document(tmp_path):
    log = tmp_path / "tl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hybridplace_worker",
            "bench",
            "--model",
            "builtin:resnet",
            "--batch-sizes",
            "1",
            "--duration-seconds",
            "60",
            "--termination-log",
            str(log),
            "--output",
            "",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:  # wait until it is measuring
            if "loaded builtin:resnet" in line:
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    doc = json.loads(log.read_bytes())
    assert_error(rc, doc, "Timeout", "SIGTERM")


def test_invalid_argument_from_the_cli(run_cli):
    rc, doc, out, err = run_cli(["bench", "--model", "builtin:mlp", "--batch-sizes", "1,,-3"])
    assert_error(rc, doc, "InvalidArgument", "batch-sizes")
    assert json.loads(out) == doc and "usage:" not in err


def test_no_device_for_gpu_triton_instances(run_inprocess):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    rc, doc, _ = run_inprocess(
        ["bench", "--engine", "triton", "--model", "builtin:mlp", "--instance-kind", "gpu", "--batch-sizes", "1", *FAST]
    )
    assert_error(rc, doc, "NoDevice")


@pytest.mark.triton
def test_a_model_that_fails_at_a_larger_batch_in_triton_is_input_mismatch(run_inprocess, tmp_path):
    """The model raises at batch 4 only (inputs are checked at batch 1 and 2 before the server
    starts): the python backend's error is the model's, not the server's, so it fails the Job
    for good (InputMismatch), not ServerStartFailed, which the Job would retry to the same end."""
    import hashlib

    import torch

    class Picky(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.shape[0] > 2:
                raise RuntimeError("this model takes at most 2 samples")
            return x * 2

    path = tmp_path / "picky.pt"
    torch.jit.save(torch.jit.script(Picky().eval()), str(path))
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--engine",
            "triton",
            "--model",
            str(path),
            "--digest",
            digest,
            "--input",
            "x:4:float32",
            "--batch-sizes",
            "1,2,4",
            *FAST,
        ]
    )
    assert_error(rc, doc, "InputMismatch", "at most 2 samples")
