"""A mock Kubernetes API server for unit tests of the I/O half: a real HTTP server on loopback,
so the real `kubernetes` client and urllib3 meet real failures (a reset connection, a read that
never comes, 409, 410, 429 with Retry-After, 5xx), answered from a script per request.

No Kubernetes semantics here: a test says what each request gets.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kubernetes
from hybridplace.controller.kube import Kube, client_retries


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)  # sent as JSON; bytes are sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the connection without an answer (as a dying API server does)
    hang: float = 0.0  # wait this long before answering (a read timeout, for a short client timeout)


Route = Callable[[str, str, Any], Reply | None]  # (method, path, body) -> reply, None: next route


class MockApi:
    """Answers each request with the first route that returns a Reply (else 404); `down`
    resets every connection. `requests` records (method, path, body)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.down = False
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                reply = api.answer(self.command, self.path, body)
                if reply.hang:
                    time.sleep(reply.hang)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    self.connection.close()
                    return
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def answer(self, method: str, path: str, body: Any) -> Reply:
        with self._lock:
            self.requests.append((method, path, body))
            if self.down:
                return Reply(reset=True)
            for route in list(self.routes):
                reply = route(method, path, body)
                if reply is not None:
                    return reply
        return Reply(404, {"kind": "Status", "reason": "NotFound", "message": f"{path} not found"})

    def on(self, method: str, path_prefix: str, *replies: Reply) -> None:
        """Answer `method` on paths starting with `path_prefix` with `replies` in turn; the last
        one stays."""
        left = list(replies)

        def route(m: str, p: str, _body: Any) -> Reply | None:
            if m != method or not p.split("?")[0].startswith(path_prefix):
                return None
            return left.pop(0) if len(left) > 1 else left[0]

        self.routes.insert(0, route)

    def calls(self, method: str, path_prefix: str) -> list[Any]:
        with self._lock:
            return [b for m, p, b in self.requests if m == method and p.split("?")[0].startswith(path_prefix)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def kube(self, timeout: tuple[float, float] = (1.0, 2.0)) -> Kube:
        return kube_at(self.url, timeout)

    def __enter__(self) -> MockApi:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def kube_at(url: str, timeout: tuple[float, float] = (1.0, 2.0)) -> Kube:
    configuration = kubernetes.client.Configuration()
    configuration.host = url
    configuration.retries = client_retries()  # as load_client sets it

    return Kube(kubernetes.client.ApiClient(configuration), timeout=timeout)


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def status(code: int, reason: str, message: str = "", headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        code,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message or reason,
            "code": code,
        },
        headers or {},
    )
