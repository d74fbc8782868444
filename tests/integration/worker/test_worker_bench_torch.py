"""bench --engine torch on the CPU: every builtin, model files by path and URL, env config."""

import json
import shutil

import pytest
from hybridplace_worker.catalog import builtin_digest
from hybridplace_worker.result import expand_compact
from worker_schema_check import assert_valid
from worker_support import FAST


@pytest.mark.parametrize("name", ["mlp", "resnet", "transformer"])
def test_each_builtin_benches_on_cpu(name, run_inprocess):
    rc, doc, out = run_inprocess(["bench", "--model", f"builtin:{name}", "--batch-sizes", "1,2", *FAST])
    assert rc == 0, doc
    assert_valid(doc)
    assert doc["engine"] == "torch" and doc["model"]["digest"] == builtin_digest(name)
    assert doc["device"]["accelerator"] == "cpu" and doc["device"]["threads"] >= 1
    points = expand_compact(doc)
    assert [(p["batchSize"], p["concurrency"]) for p in points] == [(1, 1), (2, 1)]
    for p in points:
        assert 0 < p["p50Ms"] <= p["p95Ms"] <= p["p99Ms"] and p["throughputRps"] > 0
        assert isinstance(p["stable"], bool) and p["spread"] >= 0
    full = json.loads(out)
    assert [len(p["windows"]) >= 3 and p["samples"] > 0 for p in full["points"]] == [True, True]
    assert full["settings"]["timer"] == "host-clock"


def test_concurrency_runs_threads(run_inprocess):
    rc, doc, out = run_inprocess(
        ["bench", "--model", "builtin:mlp", "--batch-sizes", "4", "--concurrency", "1,2", *FAST]
    )
    assert rc == 0, doc
    assert [(p["batchSize"], p["concurrency"]) for p in expand_compact(doc)] == [(4, 1), (4, 2)]
    assert all(p["throughputIps"] == pytest.approx(4 * p["throughputRps"], rel=1e-3) for p in expand_compact(doc))


def test_torchscript_file_with_digest(run_inprocess, tiny_torchscript):
    path, digest = tiny_torchscript
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--model",
            str(path),
            "--digest",
            digest,
            "--input",
            "x:4:float32",
            "--batch-sizes",
            "1,8",
            *FAST,
        ]
    )
    assert rc == 0, doc
    assert doc["model"] == {"name": str(path), "digest": digest, "format": "torchscript"}


def test_model_over_http_url(run_inprocess, tiny_torchscript, http_dir):
    path, digest = tiny_torchscript
    base, www = http_dir
    shutil.copy(path, www / "tiny.pt")
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--model",
            f"{base}/tiny.pt",
            "--digest",
            digest,
            "--input",
            "x:4:float32",
            "--batch-sizes",
            "2",
            *FAST,
        ]
    )
    assert rc == 0, doc
    assert doc["model"]["digest"] == digest


def test_torch_export_file_with_dynamic_batch(run_inprocess, tmp_path):
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(4, 3)).eval()
    ep = torch.export.export(module, (torch.randn(2, 4),), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    path = tmp_path / "tiny.pt2"
    torch.export.save(ep, str(path))
    rc, doc, _ = run_inprocess(
        [
            "bench",
            "--model",
            f"file://{path}",
            "--format",
            "torch-export",
            "--input",
            "x:4:float32",
            "--batch-sizes",
            "1,4",
            *FAST,
        ]
    )
    assert rc == 0, doc
    assert doc["model"]["format"] == "torch-export" and len(doc["points"]) == 2


def test_configured_by_environment_only(run_cli, tmp_path):
    out = tmp_path / "full.json"
    rc, doc, _, err = run_cli(
        ["bench"],
        env={
            "HP_MODEL": "builtin:mlp",
            "HP_BATCH_SIZES": "1,2",
            "HP_CONCURRENCY": "1",
            "HP_DURATION_SECONDS": "0.3",
            "HP_WARMUP_SECONDS": "0.05",
            "HP_OUTPUT": str(out),
            "HP_NODE_NAME": "kwok-cpu-0",
            "HP_THREADS": "1",
        },
    )
    assert rc == 0, err
    assert doc["device"]["node"] == "kwok-cpu-0" and doc["device"]["threads"] == 1
    assert len(json.loads(out.read_text())["points"]) == 2
