"""The closed-loop driver the latency validation and the capacity-drift check share
(benchmarks/validate_latency_model.py ``closed_loop``): it counts answered requests, and a
failed connection fails the call in the caller's thread (never a quietly lower count), leaving
no client thread behind. Against a refused port, a listener that never answers, and a fake HTTP
server (named as one)."""

from __future__ import annotations

import http.server
import importlib.util
import socket
import sys
import threading
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "validate_latency_model.py"
_spec = importlib.util.spec_from_file_location("validate_latency_model", _PATH)
bench = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = bench  # its dataclasses look their module up
_spec.loader.exec_module(bench)

MESSAGE = b"POST /v2/models/served/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"


class FakeTriton(http.server.BaseHTTPRequestHandler):
    """A fake of Triton's infer endpoint: reads the body, answers ``status`` with a body."""

    protocol_version = "HTTP/1.1"
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b"ok" if self.status == 200 else b'{"error":"boom"}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_server(request):
    handler = type("Handler", (FakeTriton,), {"status": getattr(request, "param", 200)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def no_client_threads() -> bool:
    return not any(t.name == "hp-saturate" and t.is_alive() for t in threading.enumerate())


def test_it_counts_the_answered_requests(fake_server):
    requests, elapsed = bench.closed_loop(fake_server, MESSAGE, 3, 0.3)
    assert requests > 3 and 0.3 <= elapsed < 5
    assert no_client_threads()


def test_a_refused_port_fails_the_call_naming_how_many_connections_failed():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RuntimeError, match=r"3 of 3 connections failed: ConnectionRefusedError"):
        bench.closed_loop(port, MESSAGE, 3, 0.2)
    assert no_client_threads()


@pytest.mark.parametrize("fake_server", [503], indirect=True)
def test_a_server_error_fails_the_call(fake_server):
    with pytest.raises(RuntimeError, match=r"2 of 2 connections failed: .*HTTP 503"):
        bench.closed_loop(fake_server, MESSAGE, 2, 0.2)
    assert no_client_threads()


def test_a_server_that_never_answers_fails_the_call_after_the_timeout():
    with socket.socket() as listener:  # accepts connections (the kernel's backlog), never reads
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        with pytest.raises(RuntimeError, match=r"2 of 2 connections failed: (TimeoutError|timeout)"):
            bench.closed_loop(listener.getsockname()[1], MESSAGE, 2, 0.2, timeout=0.5)
    assert no_client_threads()
