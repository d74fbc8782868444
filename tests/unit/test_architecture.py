"""The layers hold: handlers on top, pure builders and placement engine below, the API model at
the bottom; no Kubernetes I/O in the pure parts; the worker and the operator never import each
other (.importlinter). The contracts are checked by import-linter, which must run clean."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 kept, 0 broken" in result.stdout


def test_ruff_passes_as_make_lint_and_make_worker_lint_run_it():
    """`make lint` and `make worker-lint` are not run by CI on their own; this keeps them passing
    (the worker's code had drifted from `ruff format` unnoticed)."""
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run(
        [*ruff, "check", "operator", "workers", "tests", "benchmarks", "hack", "cluster"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    worker = sorted(str(p.relative_to(REPO)) for p in (REPO / "benchmarks").glob("worker_*.py"))
    fmt = subprocess.run(
        [*ruff, "format", "--check", "workers", "tests/unit/worker", "tests/integration/worker", *worker],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert fmt.returncode == 0, fmt.stdout[-3000:] + fmt.stderr[-2000:]
