"""The benchmark Job against the real API server's schema: the longest `--job-ttl-seconds` the
operator accepts (hybridplace.config.MAX_INT32) gives a Job the server takes; one second more is
refused, which is why the operator and the chart refuse it before anything starts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cases.api_objects import inference_deployment
from hybridplace.api import builtin_digest, load_objects, parse_object
from hybridplace.builders.jobs import build_benchmark_job
from hybridplace.config import LIMITS, MAX_INT32

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def dry_run_create(kubectl, namespace, ttl_seconds):
    pool = next(o.obj for o in load_objects([EXAMPLES / "hardwarepools.yaml"]) if o.obj.name == "cpu-standard")
    infd = parse_object(inference_deployment("ttl"))
    job = build_benchmark_job(namespace=namespace, digest=builtin_digest("mlp"), model=infd.spec.model,
                              benchmark=infd.spec.benchmark, pool=pool, image="worker:test",
                              ttl_seconds=ttl_seconds, backoff_limit=1)
    return subprocess.run([*kubectl, "create", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-"],
                          input=json.dumps(job), capture_output=True, text=True, timeout=60, check=False)


def test_the_longest_job_ttl_the_operator_accepts_is_one_the_server_takes(crds, namespace):
    assert LIMITS["job_ttl_seconds"][1] == MAX_INT32
    taken = dry_run_create(crds, namespace, MAX_INT32)
    assert taken.returncode == 0, taken.stderr
    assert json.loads(taken.stdout)["spec"]["ttlSecondsAfterFinished"] == MAX_INT32
    refused = dry_run_create(crds, namespace, MAX_INT32 + 1)
    assert refused.returncode != 0 and "ttlSecondsAfterFinished" in refused.stderr, refused.stderr
