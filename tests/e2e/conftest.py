"""End to end: the real operator against the real local cluster, its benchmark pods run by the
local pod runner. Each module gets its own operator (kopf's KopfRunner, in this process)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from e2e_helpers import Kubectl, running_operator

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
    with running_operator(kubeconfig) as runner:
        yield runner


@pytest.fixture
def kubectl(crds, namespace):
    return Kubectl(crds, namespace)


