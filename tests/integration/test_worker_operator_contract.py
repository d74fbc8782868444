"""The worker and the operator agree on the termination message without importing each other:
a real `hybridplace-worker bench` run becomes a valid ModelProfile for the operator's digest, and
a real failure keeps its reason code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hybridplace.api import builtin_digest
from hybridplace.builders.profiles import _COLUMNS, BenchmarkFailure, build_model_profile, parse_termination_message

REPO = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "hybridplace_worker"]


def test_a_real_result_becomes_a_valid_profile(tmp_path):
    log = tmp_path / "termination-log"
    run = subprocess.run([*WORKER, "bench", "--model", "builtin:mlp", "--digest", builtin_digest("mlp"),
                          "--batch-sizes", "1,4", "--duration-seconds", "0.2", "--warmup-seconds", "0.05",
                          "--termination-log", str(log), "--output", str(tmp_path / "full.json")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    message = log.read_text()
    assert len(message.encode()) <= 4096
    result = parse_termination_message(message)
    assert isinstance(result, dict)
    profile = build_model_profile(result, namespace="ns", pool="cpu-standard", node="n1", source="test")
    assert not isinstance(profile, BenchmarkFailure), profile
    assert profile["spec"]["model"]["digest"] == builtin_digest("mlp")
    assert [p["batchSize"] for p in profile["spec"]["points"]] == [1, 4]


def test_a_real_failure_keeps_its_reason(tmp_path):
    log = tmp_path / "termination-log"
    run = subprocess.run([*WORKER, "bench", "--model", "builtin:mlp", "--device", "cuda",
                          "--termination-log", str(log)], capture_output=True, text=True, timeout=300,
                         env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0
    failure = parse_termination_message(log.read_text())
    assert failure == BenchmarkFailure("NoDevice", failure.message)


def test_the_column_names_are_the_schemas():
    schema = json.loads((REPO / "workers" / "result.schema.json").read_text())
    columns = schema["$defs"]["result"]["properties"]["cols"]["items"]["enum"]
    assert sorted(columns) == sorted(_COLUMNS)
