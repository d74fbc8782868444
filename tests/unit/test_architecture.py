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
