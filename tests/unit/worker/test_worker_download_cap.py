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


def fetch_failure(body: bytes, announce: bool, cache_dir) -> pytest.ExceptionInfo:
    """The WorkerError of fetching `body` from a fake model server into `cache_dir`."""
    server = serve(body, announce)
    try:
        with pytest.raises(WorkerError) as err:
            fetch_model(f"http://127.0.0.1:{server.server_address[1]}/m.pt", cache_dir=cache_dir)
    finally:
        server.shutdown()
    return err


@pytest.mark.parametrize("announce", [True, False])
def test_a_download_over_the_cap_is_refused_and_removed(tmp_path, monkeypatch, announce):
    monkeypatch.setenv("HP_MAX_MODEL_BYTES", "1000")
    err = fetch_failure(b"x" * 5000, announce, tmp_path)
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


def serve_raw(response: bytes):
    """A fake model server (a test double) on loopback that answers every request with the raw
    bytes ``response`` and closes the connection: a short body, a broken chunk, a bad status line."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(10)

    def answer():
        try:
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(5)
                    conn.recv(65536)
                    conn.sendall(response)
        except OSError:
            pass  # closed by the test

    threading.Thread(target=answer, daemon=True).start()
    return listener, f"http://127.0.0.1:{listener.getsockname()[1]}/m.pt"


@pytest.mark.parametrize(
    "response,fragment",
    [
        (
            b"HTTP/1.0 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"z" * 2000,
            "truncated download (got 2000 of 5000 bytes)",
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\nabc", "truncated download"),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n",
            "truncated download",
        ),
        (b"garbage\r\n\r\n", "bad HTTP response"),
    ],
    ids=["short-body", "cut-chunk", "bad-chunk-size", "bad-status-line"],
)
def test_a_broken_download_is_model_not_found_and_leaves_nothing(tmp_path, response, fragment):
    # Before: a short body was accepted (later a DigestMismatch or "not loadable"), and
    # http.client's errors escaped as Internal.
    listener, url = serve_raw(response)
    try:
        with pytest.raises(WorkerError) as err:
            fetch_model(url, cache_dir=tmp_path)
    finally:
        listener.close()
    assert err.value.reason == Reason.MODEL_NOT_FOUND and fragment in err.value.message, err.value.message
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_said_as_such_not_unreachable(tmp_path):
    # /dev/full answers every write with ENOSPC: the download's file is a link to it.
    (tmp_path / "m.pt").symlink_to("/dev/full")
    err = fetch_failure(b"w" * 3000, True, tmp_path)
    assert err.value.reason == Reason.MODEL_NOT_FOUND
    assert f"no space left in {tmp_path}" in err.value.message and "unreachable" not in err.value.message
    assert not list(tmp_path.iterdir())
