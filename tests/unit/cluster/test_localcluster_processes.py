"""Which processes `make cluster-down` may stop: only those that name this cluster's own folder.
Cluster `hybridplace` (the demo's) has a folder that is a prefix of `hybridplace-test`'s (make
test's) and `hybridplace-chaos`'s; matching it as a substring stopped a running `make test`'s
cluster from under it (seen on 2026-12-01: 149 errors, connection refused)."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("localcluster", REPO / "cluster" / "localcluster.py")
localcluster = importlib.util.module_from_spec(_spec)
sys.modules["localcluster"] = localcluster
_spec.loader.exec_module(localcluster)

DIR = "/root/.cache/hybridplace/clusters/hybridplace"


@pytest.mark.parametrize("arg", [
    f"--data-dir={DIR}/etcd",
    f"--state-dir={DIR}",
    f"--config.file={DIR}/prometheus.yml",
    f"{DIR}/kubeconfig",
    f"--kubeconfig={DIR}/kubeconfig",
    f"--paths=/tmp/x,{DIR}/a",
])
def test_an_argument_naming_the_folder_or_a_path_in_it_is_ours(arg):
    assert localcluster.names_dir(arg, DIR)
    assert localcluster.names_dir(arg, DIR + "/")


@pytest.mark.parametrize("arg", [
    f"--data-dir={DIR}-test/etcd",        # another cluster whose name starts with this one's
    f"--state-dir={DIR}-chaos",
    f"--kubeconfig={DIR}2/kubeconfig",
    f"--config.file=/backup{DIR}/prometheus.yml",  # the folder's path inside another path
    "--leader-elect=false",
    f"--state-dir={DIR}-test --other={DIR}x",
])
def test_another_clusters_folder_that_starts_the_same_is_not_ours(arg):
    assert not localcluster.names_dir(arg, DIR)
