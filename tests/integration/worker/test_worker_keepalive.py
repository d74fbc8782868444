"""The triton engine's lean HTTP/1.1 client against a local keep-alive server (no Triton)."""

import http.server
import threading

import pytest
from hybridplace_worker.engine_triton import KeepAliveConnection, http_post_message


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    connections: set

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.server.connections.add(self.client_address)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 400 if body == b"bad" else 200
        reply = b"echo:" + body + b":" + self.headers["Inference-Header-Content-Length"].encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        if body == b"last":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.connections = set()
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_keepalive_roundtrips_reuse_one_connection(echo_server):
    host, port = echo_server.server_address
    conn = KeepAliveConnection(host, port)
    big = bytes(range(256)) * 4096  # 1 MiB: several recv() calls
    for payload in (b"one", big, b"two"):
        msg = http_post_message(host, "/v2/models/m/infer", {"Inference-Header-Content-Length": "7"}, payload)
        assert conn.roundtrip(msg) == b"echo:" + payload + b":7"
    assert len(echo_server.connections) == 1
    conn.close()


def test_error_status_raises_and_connection_close_reconnects(echo_server):
    host, port = echo_server.server_address
    conn = KeepAliveConnection(host, port)
    hdr = {"Inference-Header-Content-Length": "0"}
    with pytest.raises(RuntimeError, match="HTTP 400: echo:bad"):
        conn.roundtrip(http_post_message(host, "/", hdr, b"bad"))
    assert conn.roundtrip(http_post_message(host, "/", hdr, b"last")) == b"echo:last:0"
    assert conn.sock is None  # the server said close
    assert conn.roundtrip(http_post_message(host, "/", hdr, b"again")) == b"echo:again:0"
    assert len(echo_server.connections) == 2
    conn.close()
