"""The cost goal of issue 12 (benchmarks/seed_cost.py): with the API's default headroom, the
seed table at 3,000 requests/s gets a decision within 10% of the fewest replicas a simulation
of the batcher shows meeting the SLO, and never fewer (that would miss it). Deterministic
(seeded simulation, pure solver): seconds, any machine."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "seed_cost.py"), "--requests", "40000", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_default_headroom_places_within_ten_percent_of_the_simulation_s_cheapest():
    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(the default)" in done.stdout
    found = re.search(r"decision (\d+) replicas, simulation's cheapest (\d+)", done.stdout)
    decided, cheapest = map(int, found.groups())
    assert cheapest <= decided <= cheapest * 1.10, done.stdout


def test_the_old_blanket_headroom_is_reported_over_the_goal():
    # The benchmark can fail: 0.35 (the default before calibration) costs 37 against 26.
    done = run("--headroom", "0.35")
    assert done.returncode == 1
    assert "OUTSIDE the 10% goal" in done.stdout and "decision 37 replicas" in done.stdout
