"""Worker integration tests: the real CLI, torch on the CPU, a real local tritonserver (marked
``triton``). Durations are tiny: these check behaviour and contracts, not performance."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "worker"))  # worker_schema_check


@pytest.fixture
def run_cli(tmp_path):
    """Run ``python -m hybridplace_worker ARGS`` in a subprocess.

    Returns (rc, termination doc, stdout, stderr)."""

    def run(args, env=None, timeout=300):
        log = tmp_path / f"termination-log-{len(list(tmp_path.glob('termination-log-*')))}"
        proc = subprocess.run(
            [sys.executable, "-m", "hybridplace_worker", *args, "--termination-log", str(log)],
            capture_output=True,
            text=True,
            timeout=timeout,
            # Its temporary folders in the test's own: a worker ended by its deadline exits at once.
            env={**os.environ, "TMPDIR": str(tmp_path), **(env or {})},
        )
        data = log.read_bytes() if log.exists() else b""
        assert len(data) <= 4096
        doc = json.loads(data) if data else None
        return proc.returncode, doc, proc.stdout, proc.stderr

    return run


@pytest.fixture
def run_inprocess(tmp_path, capsys):
    """Run the worker in this process (torch is imported once): (rc, termination doc, stdout)."""
    from hybridplace_worker.runner import run

    def go(args):
        log = tmp_path / "termination-log"
        if log.exists():
            log.unlink()
        rc = run([*args, "--termination-log", str(log)], started=None, handle_signals=False)
        out = capsys.readouterr().out
        doc = json.loads(log.read_bytes())
        return rc, doc, out

    return go


@pytest.fixture
def tiny_torchscript(tmp_path):
    """A 4 -> 3 linear TorchScript model file and its digest."""
    import hashlib

    import torch

    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        module = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).eval())
        torch.jit.save(module, str(path))
    return path, "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    stall: threading.Event

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.startswith("/stall"):
            self.server.stall.wait(60)  # a server that accepts and never answers
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; /stall/* never answers. Yields (base URL, directory)."""
    www = tmp_path / "www"
    www.mkdir()

    def handler(*a, **kw):
        return _Handler(*a, directory=str(www), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.stall = threading.Event()
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", www
    server.stall.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def tiny_model_url(http_dir, tiny_torchscript):
    """tiny_torchscript served by http_dir: (URL, local path, digest)."""
    import shutil

    base, www = http_dir
    path, digest = tiny_torchscript
    shutil.copyfile(path, www / "tiny.pt")
    return f"{base}/tiny.pt", path, digest
