"""benchmarks/gpu_check.sh: its no-GPU path (what CI and these machines take) end to end, and the
pieces its GPU path is built from, on the real H200 run committed under
benchmarks/results/gpu-h200-2026-11-30 (its profiles under examples/gpu/h200)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
sys.modules["gpu_check"] = gpu_check
_spec.loader.exec_module(gpu_check)

H200 = REPO / "examples" / "gpu" / "h200"
RUN = REPO / "benchmarks" / "results" / "gpu-h200-2026-11-30"


def test_without_a_gpu_it_says_so_in_one_line_and_exits_0(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, PY=sys.executable, CUDA_VISIBLE_DEVICES="", HP_PERF_ANALYZER_DIR="/nonexistent")
    proc = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: no NVIDIA GPU here"), proc.stdout
    assert "nothing measured" in lines[0]
    assert not out.exists()  # nothing written, nothing fetched


def test_the_python_entry_point_takes_the_same_path_without_a_gpu(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "gpu_absent_reason", lambda: "torch sees no CUDA device")
    assert gpu_check.main(["--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.startswith("gpu-check: no NVIDIA GPU here (torch sees no CUDA device)")
    assert not (tmp_path / "o").exists()


def test_pool_names_from_gpu_products():
    assert gpu_check.pool_slug("NVIDIA H200") == "gpu-h200"
    assert gpu_check.pool_slug("NVIDIA H100 80GB HBM3") == "gpu-h100-80gb-hbm3"
    assert gpu_check.pool_slug("Tesla T4") == "gpu-tesla-t4"
    assert gpu_check.pool_slug("!!!") == "gpu-unknown"


def test_bench_command_measures_on_cuda_with_the_engine_asked_for(tmp_path):
    cmd, full, compact = gpu_check.bench_command("resnet", "triton", tmp_path, 120)
    assert cmd[cmd.index("--device") + 1] == "cuda" and cmd[cmd.index("--engine") + 1] == "triton"
    assert cmd[cmd.index("--instance-kind") + 1] == "gpu"
    assert cmd[cmd.index("--termination-log") + 1] == str(compact) and full.parent == tmp_path
    torch_cmd, _, _ = gpu_check.bench_command("mlp", "torch", tmp_path, 120)
    assert "--instance-kind" not in torch_cmd


def _compact_from_full(full: dict) -> dict:
    """The worker's own compact form of a committed full result (what a pod's termination
    message would hold)."""
    from hybridplace_worker.result import compact_result

    return compact_result(full)


def test_committed_h200_results_become_the_committed_profiles():
    """The profiles shipped under examples/gpu/h200 are what profile_for makes of the run's
    results: nothing was edited by hand between the GPU run and the commit."""
    results = json.loads((RUN / "results.json").read_text())
    source = yaml.safe_load_all((H200 / "modelprofiles-torch.yaml").read_text())
    shipped = {d["spec"]["model"]["name"]: d for d in source if d}
    assert set(shipped) == {"builtin:mlp", "builtin:resnet", "builtin:transformer"}
    for name, doc in shipped.items():
        full = results["results"][f"torch-{name.split(':')[1]}"]
        remade = gpu_check.profile_for(_compact_from_full(full), "gpu-h200", doc["spec"]["source"])
        assert isinstance(remade, dict), remade
        assert remade["spec"]["points"] == doc["spec"]["points"]
        assert remade["spec"]["device"]["name"] == "NVIDIA H200"
        assert remade["spec"]["device"]["driverVersion"] == results["facts"]["driver"]
        assert remade["spec"]["provenance"] == "measured" and "namespace" not in remade["metadata"]


def test_a_garbled_result_gives_a_reason_not_a_profile():
    why = gpu_check.profile_for({"v": 1, "ok": True, "model": {}}, "gpu-h200", "test")
    assert isinstance(why, str) and "InvalidResult" in why


def test_the_report_has_every_step_and_point(tmp_path):
    results = json.loads((RUN / "results.json").read_text())
    report = tmp_path / "report.md"
    gpu_check.write_report(report, results["facts"], results["steps"], results["results"], results["perfAnalyzer"])
    text = report.read_text()
    assert text.startswith("# GPU check: NVIDIA H200")
    for step in results["steps"]:
        assert f"| {step['step']} | {step['status']} |" in text
    for name, full in results["results"].items():
        assert f"## {name} " in text
        for p in full["points"]:
            assert f"| {p['batchSize']} | {p['concurrency']} | {p['p50Ms']:.3f} |" in text
    assert f"Worst deviation {results['perfAnalyzer']['worstDeviation']:.1%}" in text
    # The H200 run predates the idle-polling hold: its report says it was not recorded.
    assert "idle CPUs: not recorded." in text


def test_the_report_says_how_idle_cpus_behaved_during_the_comparison(tmp_path):
    results = json.loads((RUN / "results.json").read_text())
    comparison = dict(results["perfAnalyzer"], idle="idle CPUs polling (/dev/cpu_dma_latency held at 0 us)")
    report = tmp_path / "report.md"
    gpu_check.write_report(report, results["facts"], results["steps"], results["results"], comparison)
    assert "; idle CPUs polling (/dev/cpu_dma_latency held at 0 us)." in report.read_text()
