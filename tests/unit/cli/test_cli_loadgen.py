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
        ok = getattr(self.server, "ok", False)
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    servers = []

    def start(slow=False, ok=False, host="127.0.0.1"):
        server = ThreadingHTTPServer((host, 0), FakeTriton)
        server.slow, server.ok = slow, ok
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


def test_the_pods_are_listed_again_during_a_run_and_a_failed_listing_keeps_the_ones_known(fake_server):
    """A replica that becomes Ready mid-run gets its share from the next re-list; a re-list that
    fails (the API server away) or finds nothing keeps sending to the pods already known."""
    first, second = ("127.0.0.1", fake_server(ok=True)), ("127.0.0.2", fake_server(ok=True, host="127.0.0.2"))
    calls = []

    def refresh():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("connection refused")
        return [] if len(calls) == 2 else [second]

    arrivals = [i * 0.02 for i in range(60)]  # 1.2 s
    latencies, errors, dropped, window, by_pod = asyncio.run(drive(
        [first], {"inputs": []}, arrivals, rng=random.Random(0), max_in_flight=8, timeout_s=2,
        refresh=refresh, refresh_s=0.2))
    assert len(calls) >= 3 and errors == Counter({"refresh RuntimeError": 1})
    assert by_pod[first[0]] >= 15 and by_pod[second[0]] >= 15  # the first until ~0.6 s, then the second
    assert sum(by_pod.values()) == 60 and dropped == 0
