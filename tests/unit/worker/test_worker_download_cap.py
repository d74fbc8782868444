"""A model download is capped (HP_MAX_MODEL_BYTES, default 2 GiB): a URL that announces or sends
more is refused with ModelNotFound and a message saying why, and nothing is left on disk."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.models import fetch_model


def serve(body: bytes, announce: bool, status: int = 200):
    """A fake model server (a test double) on loopback answering every GET with ``status``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(status)
            if announce:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.mark.parametrize("announce", [True, False])
def test_a_download_over_the_cap_is_refused_and_removed(tmp_path, monkeypatch, announce):
    monkeypatch.setenv("HP_MAX_MODEL_BYTES", "1000")
    server = serve(b"x" * 5000, announce)
    try:
        with pytest.raises(WorkerError) as err:
            fetch_model(f"http://127.0.0.1:{server.server_address[1]}/m.pt", cache_dir=tmp_path)
    finally:
        server.shutdown()
    assert err.value.reason == Reason.MODEL_NOT_FOUND
    assert "larger than 1000 bytes" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_a_download_within_the_cap_arrives_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("HP_MAX_MODEL_BYTES", "5000")
    server = serve(b"y" * 5000, False)
    try:
        path = fetch_model(f"http://127.0.0.1:{server.server_address[1]}/m.pt", cache_dir=tmp_path)
    finally:
        server.shutdown()
    assert path.read_bytes() == b"y" * 5000


@pytest.mark.parametrize("case", ["over the cap", "503", "refused"])
def test_a_failed_download_into_its_own_folder_leaves_no_folder(tmp_path, monkeypatch, case):
    """Without ``cache_dir`` fetch_model makes a folder of its own; a failure removes it again."""
    import tempfile

    from hybridplace_worker.triton_server import free_ports

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("HP_MAX_MODEL_BYTES", "1000")
    server = None
    if case == "refused":
        url, fragment = f"http://127.0.0.1:{free_ports(1)[0]}/m.pt", "unreachable"
    else:
        server = serve(b"x" * 5000, True, status=503 if case == "503" else 200)
        url = f"http://127.0.0.1:{server.server_address[1]}/m.pt"
        fragment = "HTTP 503" if case == "503" else "larger than 1000 bytes"
    try:
        with pytest.raises(WorkerError) as err:
            fetch_model(url)
    finally:
        if server is not None:
            server.shutdown()
    assert err.value.reason == Reason.MODEL_NOT_FOUND and fragment in str(err.value)
    assert not list(tmp_path.iterdir())
