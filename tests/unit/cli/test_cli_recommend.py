"""`hybridplace recommend`: the operator's decision from YAML files, and one clear line with exit
code 2 for every kind of bad input (never a traceback)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hybridplace.api import load_objects
from hybridplace.cli.main import main
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import plan_inference_deployment

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
POOLS = EXAMPLES / "hardwarepools.yaml"
SEED = EXAMPLES / "seed"
SEED_INFD = yaml.safe_load((SEED / "inferencedeployment.yaml").read_text())
SEED_PROFILES = list(yaml.safe_load_all((SEED / "modelprofiles.yaml").read_text()))


def recommend(capsys, *args):
    """(exit code, stdout, stderr) of `hybridplace recommend ARGS`, in this process."""
    code = main(["recommend", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def operator_plan(paths, namespace=None):
    """The operator's planner on the objects in `paths` (every pool; its profiles by pool)."""
    loaded = [x.obj for x in load_objects(paths)]
    infd = next(o for o in loaded if o.kind == "InferenceDeployment")
    if namespace is not None:
        infd.metadata.namespace = namespace
    return plan_inference_deployment(
        infd, pools={o.name: o for o in loaded if o.kind == "HardwarePool"},
        profiles={o.spec.pool: o for o in loaded if o.kind == "ModelProfile"}, jobs={},
        children={}, service_names=set(), settings=Settings(), now="2026-11-23T18:00:00Z",
        fingerprint=deployment_fingerprint)


def write(tmp_path, name, *docs):
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def seed_infd(**spec):
    body = copy.deepcopy(SEED_INFD)
    for key, value in spec.items():
        body["spec"][key] = {**body["spec"].get(key, {}), **value}
    return body


# --- decisions ------------------------------------------------------------------------------


def test_the_seed_example_is_decided_like_the_operator_decides_it(capsys):
    code, out, err = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json")
    assert (code, err) == (0, "")
    got = json.loads(out)
    # The operator's planner on the same objects (all pools measured): the same decision.
    plan = operator_plan([POOLS, SEED])
    expected = plan.decision.to_dict()
    assert {k: got[k] for k in expected} == expected
    assert got["message"] == plan.decision.message
    # Identifying fields, and the minimum.
    assert (got["name"], got["namespace"], got["targetRps"]) == ("seed", "default", 50.0)
    assert got["slo"] == {"percentile": 95, "latencyMs": 1000.0}
    assert got["modelDigest"] == SEED_PROFILES[0]["spec"]["model"]["digest"]
    # At 50 requests/s under p95 <= 1000 ms: three CPU replicas (0.6048 USD/h) beat a T4 node.
    assert got["feasible"] is True
    assert [(p["pool"], p["replicas"], p["batchSize"]) for p in got["placements"]] == [
        ("cpu-standard", 3, 100)]
    assert got["totalCostPerHour"] == pytest.approx(0.6048)
    assert got["totalWatts"] == pytest.approx(135)
    # Per million inferences: 0.6048 USD/h over 50 x 3600 = 180,000 inferences an hour is
    # 3.36 USD; 135 W over the same hour is 750 Wh.
    assert got["costPerMillion"] == pytest.approx(3.36)
    assert got["wattHoursPerMillion"] == pytest.approx(750)
    assert got["placements"][0]["costPerMillion"] == pytest.approx(3.36)
    assert set(got["placements"][0]) >= {"pool", "replicas", "batchSize", "predictedLatencyMs",
                                         "costPerHour", "watts", "costPerMillion",
                                         "wattHoursPerMillion"}
    (gpu,) = got["alternatives"]
    assert (gpu["pool"], gpu["reason"]) == ("gpu-t4", "MoreExpensive")
    assert [p["state"] for p in got["profiles"]] == ["Measured", "Measured"]


def test_the_table_shows_the_choice_then_the_alternatives_with_reasons(capsys):
    code, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "InferenceDeployment default/seed"
    chosen = lines.index("  CHOSEN: 3 replicas, 0.6048 USD/h, 135 W; 3.36 USD, 750 Wh per million "
                         "inferences")
    alternatives = lines.index("  ALTERNATIVES (why each lost)")
    assert chosen < alternatives
    assert lines[chosen + 1].split() == ["POOL", "REPLICAS", "MAX", "BATCH", "SHARE", "RPS",
                                         "P95", "MS", "UTIL", "USD/H", "WATTS", "USD/M", "INF",
                                         "WH/M", "INF"]
    assert lines[chosen + 2].split()[:3] == ["cpu-standard", "3", "100"]
    assert lines[chosen + 2].split()[-2:] == ["3.36", "750"]
    gpu_row = lines[alternatives + 2]
    assert gpu_row.split()[:2] == ["gpu-t4", "MoreExpensive"]
    assert gpu_row.endswith("costs 0.1472 USD/h more than the choice")


def test_target_rps_answers_what_if_for_each_load(capsys):
    code, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json",
                             "--target-rps", "10", "100", "900", "--gateway")
    assert code == 0
    got = json.loads(out)
    assert [r["targetRps"] for r in got] == [10.0, 100.0, 900.0]
    pools = [sorted(p["pool"] for p in r["placements"]) for r in got]
    assert pools[0] == ["cpu-standard"]  # light load: one CPU replica
    assert pools[1] == ["gpu-t4"]  # one T4 node carries 100 requests/s
    # 900 requests/s: more than the T4 pool's 8 nodes hold (maxReplicas 8), so a split,
    # weighted by a gateway's HTTPRoute.
    assert pools[2] == ["cpu-standard", "gpu-t4"]
    assert got[2]["routing"] == "Weighted"
    assert sum(p["shareRps"] for p in got[2]["placements"]) == pytest.approx(900)
    assert {p["pool"]: p["replicas"] for p in got[2]["placements"]}["gpu-t4"] == 8
    weights = {p["pool"]: p["weight"] for p in got[2]["placements"]}
    for p in got[2]["placements"]:
        assert weights[p["pool"]] / sum(weights.values()) == pytest.approx(p["shareRps"] / 900, abs=1e-4)


def test_without_a_gateway_a_split_is_one_a_service_can_carry_and_the_table_says_how_it_is_routed(capsys):
    # 900 requests/s needs a weighted split: with a Service alone nothing within capacity holds it.
    code, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json", "--target-rps", "900")
    assert code == 0
    got = json.loads(out)  # one report: an object
    assert got["feasible"] is False and "routing" not in got
    # 150 requests/s: with a gateway a GPU node plus CPU replicas, weighted; without, the CPU
    # pool alone (a Service's even spread cannot give the CPU replicas less than the GPU one).
    _, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json", "--target-rps", "150")
    even = json.loads(out)
    assert even["routing"] in ("EvenSpread", "SinglePool")
    per_replica = {round(p["shareRps"] / p["replicas"], 6) for p in even["placements"]}
    assert len(per_replica) == 1  # every replica the same share
    assert all("weight" not in p for p in even["placements"])
    _, table, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "--target-rps", "150")
    assert f"ROUTING: {even['routing']}" in table
    _, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json", "--target-rps", "150", "--gateway")
    weighted = json.loads(out)
    assert weighted["routing"] == "Weighted" and weighted["totalCostPerHour"] < even["totalCostPerHour"]
    _, table, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "--target-rps", "150", "--gateway")
    assert "WEIGHT" in table and "ROUTING: Weighted: an HTTPRoute sends each pool's Service its share" in table


def test_yaml_output_is_the_same_report(capsys):
    _, as_json, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "json")
    code, as_yaml, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "-o", "yaml")
    assert code == 0
    assert yaml.safe_load(as_yaml) == json.loads(as_json)


def test_an_infeasible_slo_names_the_best_achievable_and_can_fail_ci(tmp_path, capsys):
    infd = write(tmp_path, "infd.yaml", seed_infd(slo={"latencyMs": 20}))
    args = ["-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", infd]
    code, out, _ = recommend(capsys, *args, "-o", "json")
    assert code == 0
    got = json.loads(out)
    assert got["feasible"] is False and got["placements"] == []
    assert got["bestAchievableLatencyMs"] > 20
    assert got["bestAchievablePool"] in ("cpu-standard", "gpu-t4")
    assert {a["reason"] for a in got["alternatives"]} == {"OverSLO"}
    code, out, _ = recommend(capsys, *args, "--fail-if-infeasible")
    assert code == 3
    assert "INFEASIBLE: no placement meets p95<=20ms" in out


def test_a_pool_without_a_profile_is_a_noprofile_alternative(tmp_path, capsys):
    cpu_only = write(tmp_path, "profiles.yaml", SEED_PROFILES[0])
    infd = write(tmp_path, "infd.yaml", SEED_INFD)
    code, out, _ = recommend(capsys, "-f", POOLS, "-f", cpu_only, "-f", infd, "-o", "json")
    assert code == 0
    got = json.loads(out)
    assert [p["pool"] for p in got["placements"]] == ["cpu-standard"]
    assert [(a["pool"], a["reason"]) for a in got["alternatives"]] == [("gpu-t4", "NoProfile")]
    assert [(p["pool"], p["state"]) for p in got["profiles"]] == [
        ("cpu-standard", "Measured"), ("gpu-t4", "Missing")]


def test_profiles_of_another_namespace_are_not_used(tmp_path, capsys):
    # Two deployments of the same model: profiles only count in their own namespace.
    other = copy.deepcopy(SEED_PROFILES)
    for p in other:
        p["metadata"]["namespace"] = "team-b"
    infd_b = seed_infd()
    infd_b["metadata"] = {"name": "seed-b", "namespace": "team-b"}
    other[0]["spec"]["points"][0]["p50Ms"] = 1.0  # team-b's CPU is faster at batch 1
    files = [write(tmp_path, "b.yaml", *other, infd_b), POOLS, SEED]
    code, out, _ = recommend(capsys, *[x for f in files for x in ("-f", f)], "-o", "json")
    assert code == 0
    got = {r["namespace"]: r for r in json.loads(out)}
    assert set(got) == {"default", "team-b"}
    assert got["default"]["profiles"][0]["message"] == f"from {SEED / 'modelprofiles.yaml'}#1"
    assert got["team-b"]["profiles"][0]["message"] == f"from {tmp_path / 'b.yaml'}#1"


# --- bad input: exit 2, one line naming the file, the object and the field -----------------


def bad(capsys, *args):
    code, out, err = recommend(capsys, *args)
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hybridplace recommend: ")
    return lines[0]


def test_yaml_that_does_not_parse(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: hybridplace.io/v1alpha1\nkind: [HardwarePool\n")
    line = bad(capsys, "-f", POOLS, "-f", broken)
    assert f"{broken} (line 3, column 1): not valid YAML" in line


def test_an_unknown_kind(tmp_path, capsys):
    path = write(tmp_path, "deploy.yaml",
                 {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
    line = bad(capsys, "-f", POOLS, "-f", SEED, "-f", path)
    assert f"{path}: Deployment web: kind: unknown kind 'Deployment'" in line


@pytest.mark.parametrize("kind", [None, 5])
def test_a_kind_that_is_not_a_string(tmp_path, capsys, kind):
    path = write(tmp_path, "odd.yaml", {"apiVersion": "hybridplace.io/v1alpha1", "kind": kind,
                                        "metadata": {"name": "odd"}})
    line = bad(capsys, "-f", POOLS, "-f", SEED, "-f", path)
    assert str(path) in line and "kind" in line


def test_an_object_that_fails_validation_names_every_bad_field(tmp_path, capsys):
    infd = seed_infd(slo={"latencyMs": -5}, load={"targetRps": 50, "minReplicas": 0})
    path = write(tmp_path, "infd.yaml", infd)
    line = bad(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", path)
    assert f"{path}: InferenceDeployment seed: spec.slo.latencyMs: must be greater than 0" in line
    assert "spec.load.minReplicas" in line


def test_a_bad_document_in_a_multi_document_file_is_named_by_its_number(tmp_path, capsys):
    second = copy.deepcopy(SEED_PROFILES[1])
    second["spec"]["points"][0]["p95Ms"] = 0
    path = write(tmp_path, "profiles.yaml", SEED_PROFILES[0], second)
    line = bad(capsys, "-f", POOLS, "-f", path)
    assert (f"{path}#2: ModelProfile mp-556438b84d93-gpu-t4: spec.points[0].p95Ms: must be "
            f"greater than 0") in line


def test_no_profile_for_the_models_digest_says_which_digests_were_given(capsys):
    line = bad(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml",
               "-f", EXAMPLES / "inferencedeployment.yaml")
    assert (f"{EXAMPLES / 'inferencedeployment.yaml'}: InferenceDeployment default/demo-mlp: "
            f"spec.model: no ModelProfile of its digest sha256:740e5c0c") in line
    assert "for any of its pools (cpu-standard, gpu-t4)" in line
    assert "are of sha256:556438b8" in line


def test_profiles_in_another_namespace_are_pointed_at(tmp_path, capsys):
    moved = copy.deepcopy(SEED_PROFILES)
    for p in moved:
        p["metadata"]["namespace"] = "ml"
    path = write(tmp_path, "profiles.yaml", *moved)
    line = bad(capsys, "-f", POOLS, "-f", path, "-f", SEED / "inferencedeployment.yaml")
    assert "InferenceDeployment default/seed: spec.model: no ModelProfile" in line
    assert "profiles of this digest are in namespace ml" in line


def test_a_pool_that_is_not_in_the_files(tmp_path, capsys):
    path = write(tmp_path, "infd.yaml", seed_infd(placement={"pools": ["cpu-standard", "tpu"]}))
    line = bad(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", path)
    assert (f"{path}: InferenceDeployment default/seed: spec.placement.pools[1]: HardwarePool "
            f"'tpu' is not in the files given (HardwarePools found: cpu-standard, gpu-t4)") in line


def restricted_pools(tmp_path, *names):
    """examples/hardwarepools.yaml with the pools `names` admitting only namespace ml-team."""
    pools = [d for d in yaml.safe_load_all(POOLS.read_text()) if d]
    for pool in pools:
        if pool["metadata"]["name"] in names:
            pool["spec"]["allowedNamespaces"] = ["ml-team"]
    return write(tmp_path, f"pools-{'-'.join(names)}.yaml", *pools)


def test_a_named_pool_that_does_not_admit_the_namespace_is_left_out_as_the_operator_does(tmp_path, capsys):
    restricted = restricted_pools(tmp_path, "gpu-t4")
    code, out, err = recommend(capsys, "-f", restricted, "-f", SEED, "-o", "json")
    assert (code, err) == (0, "")
    got = json.loads(out)
    # The operator's planner on the same objects: the pool is Missing (NamespaceNotAllowed), the
    # decision is made without it, and it is listed among the alternatives.
    plan = operator_plan([restricted, SEED], namespace="default")  # as the API server returns it
    expected = plan.decision.to_dict()
    assert {k: got[k] for k in expected} == expected
    (missing,) = [p for p in plan.status["profiles"] if p["pool"] == "gpu-t4"]
    assert got["profiles"][1] == missing
    assert (missing["state"], missing["reason"]) == ("Missing", "NamespaceNotAllowed")
    assert "does not admit namespace default" in missing["message"]
    assert [(a["pool"], a["reason"]) for a in got["alternatives"]] == [("gpu-t4", "NoProfile")]
    # Every pool named refuses the namespace: nothing to decide on, the one clear line.
    line = bad(capsys, "-f", restricted_pools(tmp_path, "gpu-t4", "cpu-standard"), "-f", SEED)
    assert "spec.placement.pools[0]: HardwarePool 'cpu-standard' does not admit namespace default" in line
    # No pool named: only the pools that admit the namespace are considered, none reported.
    path = write(tmp_path, "infd.yaml", seed_infd(placement={"pools": []}))
    code, out, _ = recommend(capsys, "-f", restricted, "-f", SEED / "modelprofiles.yaml", "-f", path, "-o", "json")
    assert code == 0 and [p["pool"] for p in json.loads(out)["profiles"]] == ["cpu-standard"]


def test_no_pools_at_all(capsys):
    line = bad(capsys, "-f", SEED)
    assert "InferenceDeployment default/seed: spec.placement.pools[0]: HardwarePool " \
           "'cpu-standard' is not in the files given (HardwarePools found: none)" in line


def test_no_inference_deployment(capsys):
    line = bad(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml")
    assert "no InferenceDeployment in the files given (found only HardwarePool, ModelProfile)" \
        in line


def test_a_path_that_does_not_exist(tmp_path, capsys):
    line = bad(capsys, "-f", POOLS, "-f", tmp_path / "nope.yaml")
    assert f"{tmp_path / 'nope.yaml'}: no such file or folder" in line


def test_two_profiles_for_one_pool_and_digest(tmp_path, capsys):
    again = copy.deepcopy(SEED_PROFILES[0])
    again["metadata"]["name"] = "cpu-again"
    path = write(tmp_path, "again.yaml", again)
    line = bad(capsys, "-f", POOLS, "-f", SEED, "-f", path)
    assert f"{path}: ModelProfile default/cpu-again: spec.pool: a second ModelProfile" in line
    assert "ModelProfile default/mp-556438b84d93-cpu-standard" in line


def test_an_object_without_a_name(tmp_path, capsys):
    pool = yaml.safe_load_all(POOLS.read_text()).__next__()
    del pool["metadata"]["name"]
    path = write(tmp_path, "pool.yaml", pool)
    line = bad(capsys, "-f", path, "-f", SEED)
    assert f"{path}: HardwarePool <unnamed>: metadata.name: required value" in line


def test_a_pool_defined_twice(tmp_path, capsys):
    # In two files (one file given twice is read once: test_cli_files.py).
    copy_of_pools = tmp_path / "pools-copy.yaml"
    copy_of_pools.write_text(POOLS.read_text())
    line = bad(capsys, "-f", POOLS, "-f", copy_of_pools, "-f", SEED)
    assert (f"{copy_of_pools}#1: HardwarePool cpu-standard: metadata.name: defined twice (also in "
            f"{POOLS}#1)") in line


def test_a_bad_target_rps_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["recommend", "-f", str(POOLS), "--target-rps", "-3"])
    assert exited.value.code == 2
    assert "'-3' must be a finite number > 0" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["yaml", "no-profile", "ok"])
def test_the_exit_code_and_no_traceback_from_the_installed_command(tmp_path, case):
    if case == "yaml":
        broken = tmp_path / "broken.yaml"
        broken.write_text("kind: [\n")
        args, expected = ["-f", str(broken)], 2
    elif case == "no-profile":
        args, expected = ["-f", str(POOLS), "-f", str(EXAMPLES / "inferencedeployment.yaml")], 2
    else:
        args, expected = ["-f", str(POOLS), "-f", str(SEED), "-o", "json"], 0
    done = subprocess.run([str(Path(sys.executable).parent / "hybridplace"), "recommend", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == expected, done.stderr
    assert "Traceback" not in done.stderr
    if expected == 2:
        assert done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1
    else:
        assert json.loads(done.stdout)["feasible"] is True
