"""`hybridplace report --from-cluster` against the real API server: the InferenceDeployment, the
HardwarePools and its namespace's ModelProfiles are read from the cluster, and the picture's
data is the same as from the files (the seed crossover at 68.6 requests/s)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hybridplace.cli.main import main

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"


def test_report_from_the_cluster_draws_the_seed_crossover(crds, kubeconfig, namespace, tmp_path, capsys):
    for path in (EXAMPLES / "hardwarepools.yaml", EXAMPLES / "seed"):
        subprocess.run([*crds, "apply", "-n", namespace, "-f", str(path)], check=True, capture_output=True,
                       timeout=60)
    code = main(["report", "--from-cluster", "--name", "seed", "-n", namespace, "--kubeconfig", kubeconfig,
                 "--points", "60", "-o", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["source"] == f"cluster: InferenceDeployment {namespace}/seed"
    assert data["crossovers"][0]["rps"] == pytest.approx(68.6, abs=0.05)
    assert data["decision"]["totalCostPerHour"] == pytest.approx(0.6048)
    assert (tmp_path / "cost-vs-load.png").stat().st_size > 1000


def test_report_from_the_cluster_names_what_is_missing(kubeconfig, namespace, crds, capsys, tmp_path):
    code = main(["report", "--from-cluster", "--name", "absent", "-n", namespace, "--kubeconfig", kubeconfig,
                 "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert f"InferenceDeployment {namespace}/absent not found" in err
