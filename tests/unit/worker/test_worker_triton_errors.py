"""How the triton engine classifies a failed request while tritonserver is still running.

Only a request the model refuses (HTTP 4xx, gRPC INVALID_ARGUMENT and the like) is
``InputMismatch``, which the operator's Job does not retry (exit 12). A 5xx, a python-backend
stub that died (the OOM killer), a server that is not ready, a timeout: the server failed, not the
model, so ``ServerStartFailed`` (exit 15, retried). The errors come from the real clients (our
keep-alive HTTP client, tritonclient's HTTP and gRPC clients, the raw gRPC stub) talking to fake
Triton endpoints (unit-test stand-ins, named so)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hybridplace_worker.engine_triton import _server_error, checked_client, client_worker
from hybridplace_worker.errors import EXIT_CODES, Reason
from hybridplace_worker.models import check_model_inputs, load_model

# What the operator's Job fails at once (operator/hybridplace/builders/jobs.py).
NON_RETRIABLE = {EXIT_CODES[r] for r in (Reason.INVALID_ARGUMENT, Reason.INPUT_MISMATCH, Reason.OUT_OF_MEMORY)}


@pytest.fixture
def running_server(tmp_path):
    """A TritonProcess whose process stays up (a sleeping Python): the server has not exited."""
    from hybridplace_worker.triton_server import TritonProcess

    server = TritonProcess(["x"], {}, http_url="http://127.0.0.1:1", log_path=tmp_path / "log")
    server.proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield server
    server.proc.kill()
    server.proc.wait()


@pytest.fixture(scope="module")
def delay_model():
    model = load_model("builtin:delay", digest=None, format="torchscript", inputs=())
    return model, check_model_inputs(model)


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("HTTP 503: Server is not ready"),
        RuntimeError(
            "HTTP 500: Failed to process the request(s) for model instance 'model_0_0', "
            "message: Stub process 'model_0_0' is not healthy."
        ),
        RuntimeError("HTTP 429: Exceeds maximum queue size"),
        TimeoutError("timed out"),
    ],
    ids=["503-not-ready", "500-stub-unhealthy", "429-queue-full", "timeout"],
)
def test_a_server_side_failure_is_retriable_not_an_input_mismatch(running_server, exc):
    err = _server_error(exc, 8, running_server, wait_s=0.1)
    assert err.reason == Reason.SERVER_START_FAILED, err.message
    assert err.exit_code not in NON_RETRIABLE
    assert "batch size 8" in err.message


@pytest.mark.parametrize("exc", [RuntimeError("HTTP 400: unexpected shape for input 'input'")])
def test_a_request_the_model_refuses_is_still_an_input_mismatch(running_server, exc):
    err = _server_error(exc, 2, running_server, wait_s=0.1)
    assert err.reason == Reason.INPUT_MISMATCH and "unexpected shape" in err.message


def test_a_server_that_does_not_answer_in_time_is_retriable(running_server):
    from hybridplace_worker.engine_triton import KeepAliveConnection

    with socket.socket() as listener:  # accepts (the kernel does), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        conn = KeepAliveConnection("127.0.0.1", listener.getsockname()[1], timeout=0.2)
        with pytest.raises(TimeoutError) as timed_out:
            conn.roundtrip(b"POST /v2/models/model/infer HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        conn.close()
    err = _server_error(timed_out.value, 4, running_server, wait_s=0.1)
    assert err.reason == Reason.SERVER_START_FAILED, err.message
    assert "did not answer in time during batch size 4" in err.message


# --- the real clients against fake endpoints -----------------------------------------------------


class FakeTritonHttp(ThreadingHTTPServer):
    """A stand-in for tritonserver's HTTP infer endpoint: every request answered with ``status``
    and Triton's error body ``{"error": message}``."""

    daemon_threads = True

    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(("127.0.0.1", 0), _HttpHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self):
        self.shutdown()
        self.server_close()


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"error": self.server.message}).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def fake_triton_grpc(code_name: str, details: str):
    """A stand-in for tritonserver's gRPC endpoint: ModelInfer ends with status ``code_name``."""
    import grpc
    from tritonclient.grpc import service_pb2_grpc

    class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
        def ModelInfer(self, request, context):
            context.abort(getattr(grpc.StatusCode, code_name), details)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def _client_errors(protocol: str, url: str, delay_model) -> list[Exception]:
    """The exception each client path raises for one request: the checked tritonclient request
    (``_first_request``) and the prebuilt request the measurement sends (``client_worker``)."""
    model, outputs = delay_model
    errors = []
    with pytest.raises(Exception) as checked:
        checked_client(protocol, url, model, outputs, 1)
    errors.append(checked.value)
    with client_worker(protocol, url, model, outputs, 1)(0) as call, pytest.raises(Exception) as measured:
        call()
    errors.append(measured.value)
    return errors


HTTP_CASES = [
    (503, "Server is not ready", Reason.SERVER_START_FAILED),
    (500, "Stub process 'model_0_0' is not healthy.", Reason.SERVER_START_FAILED),
    (400, "unexpected shape for input 'INPUT__0' for model 'model'", Reason.INPUT_MISMATCH),
]


@pytest.mark.parametrize("status,message,reason", HTTP_CASES, ids=[str(c[0]) for c in HTTP_CASES])
def test_http_clients_errors_are_classified_by_status(running_server, delay_model, status, message, reason):
    server = FakeTritonHttp(status, message)
    try:
        errors = _client_errors("http", f"127.0.0.1:{server.server_address[1]}", delay_model)
    finally:
        server.close()
    for exc in errors:
        err = _server_error(exc, 1, running_server, wait_s=0.1)
        assert err.reason == reason, f"{type(exc).__name__}: {exc} -> {err.reason}"
        assert message in err.message


GRPC_CASES = [
    ("INTERNAL", "Stub process 'model_0_0' is not healthy.", Reason.SERVER_START_FAILED),
    ("UNAVAILABLE", "Server is not ready", Reason.SERVER_START_FAILED),
    ("DEADLINE_EXCEEDED", "Deadline Exceeded", Reason.SERVER_START_FAILED),
    ("UNKNOWN", "exception calling the model", Reason.SERVER_START_FAILED),
    ("INVALID_ARGUMENT", "unexpected shape for input 'INPUT__0' for model 'model'", Reason.INPUT_MISMATCH),
]


@pytest.mark.parametrize("code,details,reason", GRPC_CASES, ids=[c[0] for c in GRPC_CASES])
def test_grpc_clients_errors_are_classified_by_status_code(running_server, delay_model, code, details, reason):
    server, port = fake_triton_grpc(code, details)
    try:
        errors = _client_errors("grpc", f"127.0.0.1:{port}", delay_model)
    finally:
        server.stop(grace=None)
    for exc in errors:
        err = _server_error(exc, 1, running_server, wait_s=0.1)
        assert err.reason == reason, f"{type(exc).__name__}: {exc} -> {err.reason}"
        assert details in err.message
