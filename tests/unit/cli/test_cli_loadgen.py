"""hybridplace loadgen's pure parts, and its sender against servers that fail: connection refused,
a timeout and HTTP 5xx are counted as errors of their kind, never a crash (fake servers on loopback)."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace.cli.errors import UsageError
from hybridplace.cli.loadgen import check_bounds, drive, infer_body, poisson_arrivals, serving_targets, summarize


def test_arrivals_are_exactly_the_asked_count_within_the_window():
    arrivals = poisson_arrivals(50, 20, random.Random(1))
    assert len(arrivals) == 1000 and arrivals == sorted(arrivals) and 0 <= arrivals[0] and arrivals[-1] < 20


def test_bounds_and_non_loopback_pods_are_refused():
    with pytest.raises(UsageError):
        check_bounds(0, 10)
    with pytest.raises(UsageError):
        check_bounds(10, 601)
    ready = [{"type": "Ready", "status": "True"}]
    pod = {"metadata": {"name": "p"}, "status": {"podIP": "10.1.2.3", "conditions": ready},
           "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8000}]}]}}
    with pytest.raises(UsageError, match="outside 127.0.0.0/8"):
        serving_targets([pod])
    pod["status"]["podIP"] = "127.9.128.1"
    assert serving_targets([pod]) == [("127.9.128.1", 8000)]
    pod["status"]["conditions"][0]["status"] = "False"
    assert serving_targets([pod]) == []


def test_the_request_matches_the_models_metadata():
    body = infer_body({"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]}, 2)
    assert body == {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [0.0] * 8}]}


class FakeTriton(BaseHTTPRequestHandler):
    """A fake server: /slow answers after 2 s, anything else 503."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.server.slow:
            threading.Event().wait(2)
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    servers = []

    def start(slow=False):
        server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTriton)
        server.slow = slow
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()


def refused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_refused_timed_out_and_5xx_requests_are_counted_not_fatal(fake_server):
    body = {"inputs": []}
    targets = {"5xx": ("127.0.0.1", fake_server()), "refused": ("127.0.0.1", refused_port()),
               "timeout": ("127.0.0.1", fake_server(slow=True))}
    found = {}
    for kind, target in targets.items():
        latencies, errors, dropped, window, by_pod = asyncio.run(drive(
            [target], body, [0.0, 0.01, 0.02], rng=random.Random(0), max_in_flight=8, timeout_s=0.5))
        found[kind] = errors
        assert latencies == [] and dropped == 0 and sum(errors.values()) == 3
        result = summarize(10, 1, latencies, errors, dropped, 1.0, by_pod)
        assert result.ok == 0 and result.errors == 3 and result.p95_ms is None
    assert found["5xx"] == Counter({"HTTP 503": 3})
    assert found["timeout"] == Counter({"timeout": 3})
    assert set(found["refused"]) == {"ClientConnectorError"}
