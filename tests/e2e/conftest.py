"""End to end: the real operator against the real local cluster, its benchmark pods run by the
local pod runner. Each module gets its own operator (kopf's KopfRunner, in this process)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from e2e_helpers import Kubectl

REPO = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def pools(crds, kubeconfig):
    """The example HardwarePools of the local cluster (cluster-scoped, shared by all tests)."""
    subprocess.run([*crds, "apply", "-f", str(REPO / "examples" / "hardwarepools.yaml")],
                   check=True, capture_output=True, timeout=60)
    return ["cpu-standard", "gpu-t4"]


@pytest.fixture(scope="module")
def operator(pools, kubeconfig):
    """The operator, running in this process as kopf runs it, stopped after the module."""
    from kopf.testing import KopfRunner

    env = {"KUBECONFIG": kubeconfig, "HP_RESYNC_SECONDS": "20", "HP_WORKERS": "4"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from hybridplace.controller import handlers

    handlers.OPERATOR.settings = None  # read the environment above
    handlers.OPERATOR.kubeconfig = kubeconfig
    args = ["run", "--standalone", "--all-namespaces", "-m", "hybridplace.controller.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        time.sleep(2)  # startup: login, lists, watches
        yield runner
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    assert runner.exception is None, runner.output[-4000:]
    assert "Traceback" not in runner.output, runner.output[-4000:]


@pytest.fixture
def kubectl(crds, namespace):
    return Kubectl(crds, namespace)


