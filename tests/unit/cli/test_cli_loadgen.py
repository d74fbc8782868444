"""hybridplace loadgen's pure parts, and its sender against servers that fail: connection refused,
a timeout and HTTP 5xx are counted as errors of their kind, never a crash; a failed re-list of the
pods is counted apart from the requests; malformed model metadata is bad input, not a traceback
(fake servers on loopback)."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import threading
from collections import Counter
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace.cli.errors import UsageError
from hybridplace.cli.loadgen import (
    check_bounds,
    drive,
    format_result,
    infer_body,
    model_metadata,
    poisson_arrivals,
    serving_targets,
    summarize,
)


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
        latencies, errors, dropped, window, by_pod, refresh_failures = asyncio.run(drive(
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
    latencies, errors, dropped, window, by_pod, refresh_failures = asyncio.run(drive(
        [first], {"inputs": []}, arrivals, rng=random.Random(0), max_in_flight=8, timeout_s=2,
        refresh=refresh, refresh_s=0.2))
    assert len(calls) >= 3 and refresh_failures == Counter({"RuntimeError": 1}) and errors == Counter()
    assert by_pod[first[0]] >= 15 and by_pod[second[0]] >= 15  # the first until ~0.6 s, then the second
    assert sum(by_pod.values()) == 60 and dropped == 0


def test_a_failed_re_list_is_not_counted_as_a_request(fake_server):
    """The API server away for the whole run: every re-list fails, every request is answered.
    The re-lists are reported apart; sent, errors and the achieved rate count requests only."""
    target = ("127.0.0.1", fake_server(ok=True))

    def refresh():
        raise ConnectionRefusedError(111, "Connection refused")

    arrivals = [i * 0.1 for i in range(6)]  # 6 requests over 0.6 s
    latencies, errors, dropped, window, by_pod, refresh_failures = asyncio.run(drive(
        [target], {"inputs": []}, arrivals, rng=random.Random(1), max_in_flight=8, timeout_s=2,
        refresh=refresh, refresh_s=0.05))
    assert errors == Counter() and refresh_failures["ConnectionRefusedError"] >= 3
    result = summarize(10, 0.6, latencies, errors, dropped, 0.6, by_pod, refresh_failures)
    assert (result.sent, result.ok, result.errors) == (6, 6, 0)
    assert result.achieved_rps == 10.0 and result.error_kinds == {}
    assert result.refresh_failures == dict(refresh_failures)
    text = format_result("t/a", 1, result)
    assert "sent 6 (10.0 requests/s achieved), ok 6, errors 0" in text
    assert "  errors:" not in text
    failed = refresh_failures["ConnectionRefusedError"]
    assert f"pod re-list failures (not requests): ConnectionRefusedError x{failed}" in text
    assert json.loads(json.dumps(asdict(result)))["refresh_failures"] == dict(refresh_failures)


class FakeMetadata(BaseHTTPRequestHandler):
    """A fake Triton metadata endpoint: GET answers 200 with the server's ``body``."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("metadata,missing", [
    (["model"], "expected a JSON object, got a list"),
    ({"error": "Request for unknown model"}, 'no "inputs" list (it says: Request for unknown model)'),
    ({"inputs": {"name": "x"}}, 'no "inputs" list'),
    ({"inputs": ["x"]}, "input 0 is not a JSON object"),
    ({"inputs": [{"name": "x", "datatype": "FP32"}]}, 'input x has no "shape"'),
    ({"inputs": [{"name": "x", "shape": [-1, 4]}]}, 'input x has no "datatype"'),
    ({"inputs": [{"shape": [-1], "datatype": "FP32"}]}, 'input 0 has no "name"'),
    ({"inputs": [{"name": "x", "shape": "-1,4", "datatype": "FP32"}]}, 'input x: "shape" is not a list of integers'),
    ({"inputs": [{"name": "x", "shape": [-1], "datatype": ["FP32"]}]}, 'input x: "datatype" is not a string'),
])
def test_malformed_model_metadata_is_bad_input_naming_the_pod_and_what_is_missing(metadata, missing):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeMetadata)
    server.body = json.dumps(metadata).encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        with pytest.raises(UsageError) as err:
            infer_body(model_metadata("127.0.0.1", port), 1)
    finally:
        server.shutdown()
        server.server_close()
    message = str(err.value)
    assert message.startswith(f"the model metadata from the pod at 127.0.0.1:{port} is malformed: "), message
    assert missing in message and "\n" not in message
