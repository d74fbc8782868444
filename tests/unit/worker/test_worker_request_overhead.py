"""The triton engine's per-request overhead: saturated single-item throughput against the
points' time per item (engine_triton.request_overhead_ms, a pure function), and its measurement
against a fake Triton HTTP endpoint (a unit-test stand-in, named so) when the server refuses,
times out or answers 5xx: it raises from the caller's thread and leaves no client thread behind."""

import pytest
from hybridplace_worker.engine_triton import curve_ms, request_overhead_ms
from hybridplace_worker.timing import PointMeasurement


def point(concurrency: int, p50_ms: float, rps: float) -> PointMeasurement:
    return PointMeasurement(
        concurrency=concurrency,
        p50_ms=p50_ms,
        p95_ms=p50_ms,
        p99_ms=p50_ms,
        mean_ms=p50_ms,
        min_ms=p50_ms,
        max_ms=p50_ms,
        throughput_rps=rps,
        spread=0.0,
        stable=True,
        samples=100,
        windows=[],
    )


# One request of 1 item: 1 ms; of 8 items: 2 ms (0.25 ms per item).
CURVE = [(1, point(1, 1.0, 1000.0)), (8, point(1, 2.0, 500.0))]


def test_the_time_per_request_beyond_the_curve_at_the_batch_triton_ran():
    # Batches of 8 single-item requests every 4 ms: 2000 requests/s, 0.5 ms each, 0.25 more
    # than one request of 8 items pays per item.
    assert request_overhead_ms(curve_ms(CURVE), 2000.0, 8.0) == pytest.approx(0.25)


def test_between_measured_sizes_the_curve_is_interpolated():
    # s(4.5) = 1.5 ms, 1/3 ms per item; 0.1 ms more per request.
    rps = 1000.0 / (1.5 / 4.5 + 0.1)
    assert request_overhead_ms(curve_ms(CURVE), rps, 4.5) == pytest.approx(0.1)


def test_outside_the_measured_sizes_the_nearest_time_per_item_is_used():
    assert request_overhead_ms(curve_ms(CURVE), 1000.0 / 0.35, 16.0) == pytest.approx(0.1)
    assert request_overhead_ms(curve_ms(CURVE), 1000.0 / 1.2, 1.0) == pytest.approx(0.2)


def test_never_negative_when_single_item_requests_run_faster_than_the_curve():
    assert request_overhead_ms(curve_ms(CURVE), 10_000.0, 8.0) == 0.0


def test_the_curve_is_read_as_the_operator_reads_it():
    # Concurrency 1 only, and a point's time is max(p50, 1 / throughput): here 2 ms at b = 1.
    points = [(1, point(1, 1.0, 500.0)), (1, point(2, 0.1, 50_000.0))]
    assert curve_ms(points) == [(1, 2.0)]
    assert request_overhead_ms(curve_ms(points), 1000.0 / 2.5, 1.0) == pytest.approx(0.5)


def test_nothing_to_compare_gives_zero():
    assert request_overhead_ms([], 1000.0, 4.0) == 0.0
    assert request_overhead_ms(curve_ms([(1, point(2, 1.0, 100.0))]), 1000.0, 4.0) == 0.0
    assert request_overhead_ms(curve_ms(CURVE), 0.0, 4.0) == 0.0


# --- the measurement against a fake Triton (failure paths) --------------------------------------

import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

from hybridplace_worker.engine_triton import measure_request_overhead  # noqa: E402
from hybridplace_worker.models import check_model_inputs, load_model  # noqa: E402


class FakeTriton(ThreadingHTTPServer):
    """A stand-in for tritonserver's HTTP endpoint: statistics and infer, each answering with
    ``infer_status`` / ``stats_status``, or never (``hang``)."""

    daemon_threads = True

    def __init__(self, infer_status=200, stats_status=200, hang=False):
        self.infer_status, self.stats_status, self.hang = infer_status, stats_status, hang
        self.requests = 0
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self, status, body: bytes):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # /v2/models/model/stats
        if self.server.hang:
            self.server.release.wait(10)
            return
        n = self.server.requests
        stats = {"model_stats": [{"execution_count": n // 4, "inference_count": n}]}
        self._answer(self.server.stats_status, json.dumps(stats).encode())

    def do_POST(self):  # /v2/models/model/infer
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests += 1
        self._answer(self.server.infer_status, b"{}")


@pytest.fixture(scope="module")
def delay_model():
    model = load_model("builtin:delay", digest=None, format="torchscript", inputs=())
    return model, check_model_inputs(model)


def _measure(delay_model, port, stats_timeout=5.0):
    model, outputs = delay_model
    return measure_request_overhead(
        "http", f"127.0.0.1:{port}", port, model, outputs, CURVE, 2, 0.2, stats_timeout=stats_timeout
    )


def _no_client_threads_left():
    return not [t for t in threading.enumerate() if t.name.startswith("hp-load-") and t.is_alive()]


def test_measured_against_a_server_that_answers(delay_model):
    server = FakeTriton()
    try:
        facts = _measure(delay_model, server.server_address[1])
    finally:
        server.close()
    assert facts["connections"] == 4 and facts["saturatedRps"] > 0
    assert facts["meanBatch"] == pytest.approx(4.0, rel=0.1)  # the fake runs 4 per execution
    assert facts["requestOverheadMs"] >= 0


def test_connection_refused_raises_here(delay_model):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens
    with pytest.raises(OSError):
        _measure(delay_model, port)
    assert _no_client_threads_left()


def test_a_5xx_from_infer_raises_and_stops_every_client(delay_model):
    server = FakeTriton(infer_status=503)
    try:
        with pytest.raises(RuntimeError, match="HTTP 503"):
            _measure(delay_model, server.server_address[1])
    finally:
        server.close()
    assert _no_client_threads_left()


def test_a_5xx_or_a_timeout_from_statistics_raises(delay_model):
    for server, expected in ((FakeTriton(stats_status=500), "500"), (FakeTriton(hang=True), "timed out")):
        try:
            with pytest.raises(OSError, match=expected):
                _measure(delay_model, server.server_address[1], stats_timeout=0.3)
        finally:
            server.close()
    assert _no_client_threads_left()
