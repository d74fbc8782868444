"""The latency-model validation benchmark runs end to end on a real tritonserver (tiny: one
rate, a few seconds), with each of its two open-loop generators (the Go one is built here by
the local Go toolchain). It checks that the pipeline works -- server, curve, the per-request
overhead, open-loop load, Triton's statistics, predictions -- not the figures, which
docs/placement.md reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.triton, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("generator", "rates", "every_rate"),
                         [("go", "0.3,0.2", ["--request-overhead-every-rate"]), ("python", "0.3", [])])
def test_one_rate_is_measured_and_predicted(tmp_path, generator, rates, every_rate):
    out = tmp_path / "result.json"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "validate_latency_model.py"),
         "--model", "mlp", "--max-batch-size", "4", "--curve-batch-sizes", "1,4",
         "--curve-window-s", "0.3", "--utilisations", rates, "--seconds", "2",
         "--max-requests", "600", "--quiet", "0", "--generator", generator,
         "--json", str(out), "--plot", str(tmp_path / "plot.png"), *every_rate],
        capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    (run,) = result["runs"]
    row, *others = run["rows"]
    assert row["requests"] >= 100 and row["errors"] == 0 and not row["timedOut"]
    # Every figure the report shows is a number: measured, predicted, in situ, from Triton.
    for key in ("measuredP95Ms", "predictedP95Ms", "inSituP95Ms", "measuredMeanBatch",
                "serviceUnderLoadRatio", "sendLateP95Ms", "hostRunnable", "observationP95Ms",
                "calibration", "calibratedP95Ms"):
        assert isinstance(row[key], float) and row[key] > 0, key
    assert row["measuredP95Ms"] >= row["measuredP50Ms"]
    assert 1 <= row["measuredMeanBatch"] <= 4
    assert row["generator"] == generator and row["generatorCpuShare"] > 0
    # The served model was saturated with single-item requests, and what that costs beyond the
    # curve is in every curve used (default --request-overhead).
    facts = run["facts"]
    assert facts["saturatedRps"] > 0 and facts["requestOverheadMs"] >= 0
    assert 1 <= facts["saturatedMeanBatch"] <= 4
    # Each rate records the overhead its curve used (with --request-overhead-every-rate,
    # measured again before every rate after the first, like the curve).
    assert row["saturatedRps"] == facts["saturatedRps"]
    assert row["requestOverheadMs"] == facts["requestOverheadMs"]
    for other in others:  # a second rate, saturated again: another measurement, another figure
        assert other["saturatedRps"] > 0 and other["saturatedRps"] != facts["saturatedRps"]
        assert other["requestOverheadMs"] >= 0
    assert len(others) == len(rates.split(",")) - 1
    assert "| util aimed / model |" in done.stdout
    assert "p95 from the profile: within 15% on" in done.stdout
    # The calibration is the operator's: the observed window's ratio, clamped to [0.5, 4].
    ratio = row["observationP95Ms"] / row["observationPredictedP95Ms"]
    assert row["calibration"] == pytest.approx(min(max(ratio, 0.5), 4.0))
    assert row["calibratedP95Ms"] == pytest.approx(row["calibration"] * row["predictedP95Ms"])
    assert (tmp_path / "plot.png").stat().st_size > 10_000
