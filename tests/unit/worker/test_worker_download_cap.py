"""A model download is capped (HP_MAX_MODEL_BYTES, default 2 GiB): a URL that announces or sends
more is refused with ModelNotFound and a message saying why, and nothing is left on disk."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.models import fetch_model


def serve(body: bytes, announce: bool):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
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
