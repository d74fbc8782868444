"""The pod runner's serving pods survive a status write that fails (an API server restarting:
connection refused, a timeout, a 5xx): the write is kept and retried, the pod's loop goes on.
The runner and pod here are fakes (FakeRunner, SimpleNamespace pods)."""

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import urllib3
from kubernetes.client.rest import ApiException

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("podrunner", REPO / "cluster" / "podrunner.py")
podrunner = importlib.util.module_from_spec(_spec)
sys.modules["podrunner"] = podrunner
_spec.loader.exec_module(podrunner)


class FakeRunner:
    """Records status writes; fails the first `failures` of them with `error`."""

    def __init__(self, error, failures=1):
        self.error, self.failures, self.written = error, failures, []

    def container_status(self, pod, **kw):
        return {"ready": kw["ready"], "state": kw["state"], "restartCount": kw["restarts"]}

    def set_status(self, core, pod, status):
        if self.failures:
            self.failures -= 1
            raise self.error
        self.written.append(status)


def pod():
    container = SimpleNamespace(name="c", image="i")
    return SimpleNamespace(metadata=SimpleNamespace(uid="u", namespace="ns", name="p"),
                           spec=SimpleNamespace(containers=[container]))


@pytest.mark.parametrize("error", [
    urllib3.exceptions.MaxRetryError(None, "/", "Connection refused"),
    urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),
    ApiException(status=503, reason="Service Unavailable"),
], ids=["refused", "timeout", "5xx"])
def test_a_failed_status_write_is_kept_and_retried(error):
    runner = FakeRunner(error)
    serving = podrunner.ServingPod(runner, pod())
    serving.ip = "127.9.128.1"
    serving.status(None, phase="Running", ready=True, state={"running": {}})  # does not raise
    assert runner.written == [] and serving.unwritten is not None
    serving.retry_status(None)
    assert serving.unwritten is None and len(runner.written) == 1
    assert runner.written[0]["podIP"] == "127.9.128.1" and runner.written[0]["phase"] == "Running"
