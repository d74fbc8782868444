"""`hybridplace explain` against the real API server: an InferenceDeployment is applied, its
status patched (status subresource) with what the operator's planner writes, and explain prints
it; not found, no decision yet and an unreachable server each get their own exit code."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hybridplace.api import load_objects, parse_object
from hybridplace.cli.main import main
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import plan_inference_deployment

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
LOADED = [x.obj for x in load_objects([EXAMPLES / "hardwarepools.yaml", EXAMPLES / "seed"])]
POOLS = {o.name: o for o in LOADED if o.kind == "HardwarePool"}
PROFILES = {o.spec.pool: o for o in LOADED if o.kind == "ModelProfile"}
SEED = yaml.safe_load((EXAMPLES / "seed" / "inferencedeployment.yaml").read_text())
HYBRIDPLACE = str(Path(sys.executable).parent / "hybridplace")


def kubectl(crds, *args, stdin=None):
    done = subprocess.run([*crds, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def apply_seed(crds, namespace, name="seed", **spec):
    body = copy.deepcopy(SEED)
    body["metadata"] = {"name": name, "namespace": namespace}
    for key, value in spec.items():
        body["spec"][key] = {**body["spec"].get(key, {}), **value}
    kubectl(crds, "apply", "-f", "-", stdin=json.dumps(body))
    return json.loads(kubectl(crds, "get", "infd", name, "-n", namespace, "-o", "json"))


def decide_and_patch(crds, stored):
    """Write the status the operator's planner computes for `stored` (pools all measured)."""
    plan = plan_inference_deployment(
        parse_object(stored), pools=POOLS, profiles=PROFILES, jobs={}, children={},
        service_names=set(), settings=Settings(), now="2026-11-23T18:00:00Z",
        fingerprint=deployment_fingerprint)
    meta = stored["metadata"]
    kubectl(crds, "patch", "infd", meta["name"], "-n", meta["namespace"], "--subresource=status",
            "--type=merge", "-p", json.dumps({"status": plan.status}))
    return plan


def explain(capsys, kubeconfig, *args):
    code = main(["explain", *args, "--kubeconfig", kubeconfig])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_decision_is_shown_as_the_status_says(crds, namespace, kubeconfig, capsys):
    plan = decide_and_patch(crds, apply_seed(crds, namespace))
    code, out, err = explain(capsys, kubeconfig, "seed", "-n", namespace, "-o", "json")
    assert (code, err) == (0, "")
    got = json.loads(out)
    stored = json.loads(kubectl(crds, "get", "infd", "seed", "-n", namespace, "-o", "json"))
    decision = stored["status"]["decision"]
    assert decision["feasible"] is True  # the API server kept what the planner wrote
    for key, value in decision.items():
        assert got[key] == value, key
    assert (got["name"], got["namespace"], got["targetRps"]) == ("seed", namespace, 50)
    assert got["slo"] == {"percentile": 95, "latencyMs": 1000}
    assert got["message"].startswith("recommended (mode Recommend: nothing applied): ")
    assert got["message"].endswith(plan.decision.message)
    assert [c["type"] for c in got["conditions"]] == ["Profiled", "Placed", "SLOMet", "Routed", "Ready", "Observed"]
    assert [(p["pool"], p["state"]) for p in got["profiles"]] == [
        ("cpu-standard", "Measured"), ("gpu-t4", "Measured")]
    assert "note" not in got

    code, table, _ = explain(capsys, kubeconfig, "seed", "-n", namespace)
    assert code == 0
    lines = table.splitlines()
    assert lines[0] == f"InferenceDeployment {namespace}/seed"
    placement = plan.decision.placements[0]
    assert (f"  CHOSEN: {placement.replicas} replicas, {plan.decision.total_cost_per_hour:.4g} "
            f"USD/h") in table
    row = lines[lines.index(next(x for x in lines if x.startswith("  CHOSEN"))) + 2]
    assert row.split()[:3] == [placement.pool, str(placement.replicas), str(placement.batch_size)]
    assert "  ALTERNATIVES (why each lost)" in lines
    assert any(x.split()[:2] == ["gpu-t4", "MoreExpensive"] for x in lines)
    assert "  CONDITIONS" in lines and "  PROFILES" in lines
    assert any(x.split()[:3] == ["Placed", "True", "Recommended"] for x in lines)


def test_an_infeasible_decision_names_the_best_achievable(crds, namespace, kubeconfig, capsys):
    decide_and_patch(crds, apply_seed(crds, namespace, slo={"latencyMs": 20}))
    code, out, _ = explain(capsys, kubeconfig, "seed", "-n", namespace, "-o", "yaml")
    assert code == 0  # a decision was made: that nothing fits is the answer
    got = yaml.safe_load(out)
    assert got["feasible"] is False and got["placements"] == []
    assert got["bestAchievableLatencyMs"] > 20
    code, table, _ = explain(capsys, kubeconfig, "seed", "-n", namespace)
    assert "  INFEASIBLE: no placement meets p95<=20ms at 50 requests/s" in table
    assert f"best achievable p95 is {got['bestAchievableLatencyMs']:.4g} ms" in table


def test_a_spec_change_the_operator_has_not_seen_is_flagged(crds, namespace, kubeconfig, capsys):
    decide_and_patch(crds, apply_seed(crds, namespace))
    apply_seed(crds, namespace, load={"targetRps": 500})  # generation 2, status still for 1
    code, out, _ = explain(capsys, kubeconfig, "seed", "-n", namespace, "-o", "json")
    assert code == 0
    got = json.loads(out)
    assert (got["generation"], got["observedGeneration"]) == (2, 1)
    assert got["note"] == ("the status is for generation 1; the spec is at generation 2 (the "
                           "operator has not caught up)")


def test_no_decision_yet_exits_3_and_says_why(crds, namespace, kubeconfig, capsys):
    apply_seed(crds, namespace)
    code, out, err = explain(capsys, kubeconfig, "seed", "-n", namespace)
    assert code == 3
    assert "  NO DECISION YET" in out
    assert err == (f"hybridplace explain: InferenceDeployment {namespace}/seed has no decision "
                   f"yet: the operator has not reconciled it\n")


def test_the_namespace_defaults_to_the_kubeconfigs_context(crds, namespace, kubeconfig, tmp_path,
                                                          capsys):
    decide_and_patch(crds, apply_seed(crds, namespace))
    config = yaml.safe_load(Path(kubeconfig).read_text())
    for context in config["contexts"]:
        context["context"]["namespace"] = namespace
    scoped = tmp_path / "kubeconfig"
    scoped.write_text(yaml.safe_dump(config))
    code, out, _ = explain(capsys, str(scoped), "seed", "-o", "json")
    assert code == 0
    assert json.loads(out)["namespace"] == namespace


@pytest.mark.parametrize("case", ["not-found", "no-decision", "unreachable", "bad-kubeconfig"])
def test_exit_codes_from_the_installed_command(crds, namespace, kubeconfig, tmp_path, case):
    name, config = "seed", kubeconfig
    if case == "not-found":
        name, expected, says = "missing", 2, f"InferenceDeployment {namespace}/missing not found"
    elif case == "no-decision":
        apply_seed(crds, namespace)
        expected, says = 3, "has no decision yet"
    elif case == "unreachable":
        dead = yaml.safe_load(Path(kubeconfig).read_text())
        for cluster in dead["clusters"]:
            cluster["cluster"]["server"] = "https://127.0.0.1:1"
        config = str(tmp_path / "dead")
        Path(config).write_text(yaml.safe_dump(dead))
        expected, says = 1, "cannot reach the API server at https://127.0.0.1:1"
    else:
        config = str(tmp_path / "nothing-here")
        expected, says = 2, f"--kubeconfig {config}: cannot use it"
    done = subprocess.run([HYBRIDPLACE, "explain", name, "-n", namespace, "--kubeconfig", config],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("hybridplace explain: ") and says in line, line
