"""benchmarks/capacity_drift.py on a real tritonserver (tiny: two short windows): each window
saturates the served model and reads Triton's statistics and the server's CPU; the summary
gives the capacity's spread. The figures are the benchmark's to report, not checked here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "benchmarks" / "capacity_drift.py"


@pytest.mark.triton
@pytest.mark.slow
def test_two_saturated_windows_and_their_spread():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--max-batch-size", "4", "--windows", "2",
         "--window-s", "0.5", "--connections", "2,8"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = re.findall(r"connections\s+(\d+)\s+([\d.]+) requests/s  batch ([\d.]+)  server cpu "
                      r"([\d.]+)  cpu/request ([\d.]+) ms", done.stdout)
    assert [int(r[0]) for r in rows] == [2, 8]
    for _, rps, batch, cpu, per_request in rows:
        assert float(rps) > 0 and 1 <= float(batch) <= 4
        assert float(cpu) > 0 and float(per_request) > 0
    assert re.search(r"spread \(max/min - 1\): [\d.]+%", done.stdout)


def test_bad_options_are_refused_before_any_server_starts():
    for args in (("--windows", "0"), ("--window-s", "0"), ("--connections", "0,4")):
        done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "must be at least" in done.stderr or "above 0" in done.stderr
