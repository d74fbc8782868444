"""benchmarks/bench_solver.py runs end to end on a small setting: every scenario and schema-limit
case prints a row and a decision, the verdict line is there, and bad options are refused.
The timings themselves are checked by the benchmark (``make bench-solver``), not here: a timed
assertion flakes on a shared machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_solver.py"), *args],
                          capture_output=True, text=True, timeout=600)


def test_the_solver_benchmark_prints_every_scenario_and_a_verdict():
    done = run("--repeat", "1", "--runs", "2", "--spread", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "least of 2 rounds over 0 s per cold decision" in out
    for label in ("p95<=50ms, 2000 rps, hybrid", "p95<=5ms, 100 rps, single pool",
                  "SLO below every pool", "split search, even spread"):
        assert label in out
    # Feasible scenarios show their decision; the schema-limit cases are infeasible by design.
    assert re.search(r"p95<=20ms at 5000 requests/s: \d+ on ", out)
    assert out.count("feasible=False") == 4
    verdict = re.search(r"worst decision: ([\d.]+) ms CPU .* target <= 20 ms: (OK|OVER)", out)
    assert verdict and float(verdict.group(1)) > 0


def test_the_solver_benchmark_refuses_bad_options():
    for args in (("--runs", "0"), ("--repeat", "0"), ("--spread", "-1")):
        done = run(*args)
        assert done.returncode == 2
        assert "must be at least" in done.stderr
