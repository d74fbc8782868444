"""The confidence interval benchmarks/worker_vs_perf_analyzer.py prints for each paired-ratio
median: distribution-free, from order statistics."""

from __future__ import annotations

import importlib.util
import random
import statistics
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "worker_vs_perf_analyzer.py"
_spec = importlib.util.spec_from_file_location("worker_vs_perf_analyzer", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_ten_rounds_take_the_second_and_ninth_order_statistics():
    # Binomial(10, 1/2): P(X <= 1) = 11/1024, so (x_(2), x_(9)) covers 97.9%; (x_(3), x_(8)) 89%.
    assert bench.median_ci([float(x) for x in range(10, 0, -1)]) == (2.0, 9.0)


def test_too_few_rounds_give_the_whole_range():
    assert bench.median_ci([1.0, 3.0, 2.0]) == (1.0, 3.0)
    with pytest.raises(ValueError):
        bench.median_ci([])


def test_the_interval_covers_the_true_median_about_as_often_as_it_says():
    rng = random.Random(7)
    trials, covered = 2000, 0
    for _ in range(trials):
        lo, hi = bench.median_ci([rng.lognormvariate(0.0, 0.3) for _ in range(12)])
        covered += lo <= 1.0 <= hi  # the lognormal's median is exp(0) = 1
    assert 0.95 <= covered / trials <= 0.995
    assert statistics.median([1.0, 2.0]) == 1.5  # the point estimate stays statistics.median
