"""`hybridplace report`: the seed example's pictures, the crossover they draw (68.6 requests/s,
as docs/placement.md's worked example), the chosen point, and exit 2 naming the file for bad
input."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.axes
import pytest
import yaml
from hybridplace.cli.main import main
from test_cli_recommend import seed_infd, write

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
POOLS = EXAMPLES / "hardwarepools.yaml"
SEED = EXAMPLES / "seed"
PNG = b"\x89PNG\r\n\x1a\n"


def report(capsys, *args):
    code = main(["report", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory):
    """The seed example's report, written once, and the x of every vertical line drawn."""
    out = tmp_path_factory.mktemp("seed")
    drawn: list[float] = []
    original = matplotlib.axes.Axes.axvline

    def spy(self, x=0, *args, **kwargs):
        drawn.append(x)
        return original(self, x, *args, **kwargs)

    matplotlib.axes.Axes.axvline = spy
    try:
        code = main(["report", "-f", str(POOLS), "-f", str(SEED), "-o", str(out), "--points", "120"])
    finally:
        matplotlib.axes.Axes.axvline = original
    assert code == 0
    return out, json.loads((out / "report.json").read_text()), drawn


def test_the_seed_crossover_is_where_the_picture_draws_it(seed_report):
    out, data, drawn = seed_report
    first = data["crossovers"][0]
    # docs/placement.md's worked example: CPU is cheaper up to 68.6 requests/s, then one T4 node.
    assert first["rps"] == pytest.approx(68.6, abs=0.05)
    assert (first["from"], first["to"]) == (["cpu-standard"], ["gpu-t4"])
    assert first["costPerHourBefore"] == pytest.approx(0.6048) and first["costPerHourAfter"] == pytest.approx(0.752)
    # The cost figure draws it (once per panel), and the data below and above agree with it.
    assert drawn.count(first["rps"]) == 2
    loads = data["loads"]
    below = max(i for i, x in enumerate(loads) if x < first["rps"])
    assert data["chosenPools"][below] == ["cpu-standard"] and data["chosenPools"][below + 1] == ["gpu-t4"]
    assert "at **68.6 requests/s** the choice goes from cpu-standard" in (out / "report.md").read_text()


def test_the_chosen_point_is_the_decision_at_the_target_load(seed_report):
    out, data, _ = seed_report
    decision = data["decision"]
    assert data["targetRps"] == 50
    assert decision["totalCostPerHour"] == pytest.approx(0.6048)
    assert decision["costPerMillion"] == pytest.approx(3.36)
    # The target load is one of the loads drawn, and the choice there is the decision's cost.
    i = data["loads"].index(50)
    assert data["costPerHour"]["chosen"][i] == pytest.approx(0.6048)
    assert data["costPerMillion"]["chosen"][i] == pytest.approx(3.36)
    text = (out / "report.md").read_text()
    assert "| cpu-standard | 3 | 100 | 50 | 260.7 | 0.6048 | 3.36 |" in text


def test_cost_per_million_is_cost_per_hour_over_the_hours_inferences(seed_report):
    _, data, _ = seed_report
    for series in ("chosen", "cpu-standard", "gpu-t4"):
        for load, hourly, million in zip(data["loads"], data["costPerHour"][series],
                                         data["costPerMillion"][series], strict=True):
            if hourly is not None:
                assert million == pytest.approx(hourly * 1e6 / (load * 3600), rel=1e-5)


def test_the_figures_are_pngs_and_the_profiles_are_what_was_measured(seed_report):
    out, data, _ = seed_report
    for name in ("latency-by-batch.png", "throughput-by-batch.png", "cost-vs-load.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    cpu = {p["batchSize"]: p for p in data["profiles"]["cpu-standard"]}
    gpu = {p["batchSize"]: p for p in data["profiles"]["gpu-t4"]}
    # DESIGN.md's seed table: CPU 50 / 400 / 3500 ms and GPU 30 / 100 / 800 ms at batch 1 / 10 / 100.
    assert [cpu[b]["latencyMs"] for b in (1, 10, 100)] == [50, 400, 3500]
    assert [gpu[b]["latencyMs"] for b in (1, 10, 100)] == [30, 100, 800]
    assert cpu[10]["throughputIps"] == pytest.approx(25.0)


def test_bad_yaml_exits_2_naming_the_file(capsys, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: InferenceDeployment\n  spec: [\n")
    code, out, err = report(capsys, "-f", POOLS, "-f", bad, "-o", tmp_path / "out")
    assert code == 2 and out == ""
    assert err.startswith("hybridplace report: ") and str(bad) in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_bad_field_exits_2_naming_the_file_object_and_field(capsys, tmp_path):
    infd = yaml.safe_load((SEED / "inferencedeployment.yaml").read_text())
    infd["spec"]["slo"]["latencyMs"] = -1
    path = tmp_path / "infd.yaml"
    path.write_text(yaml.safe_dump(infd))
    code, _, err = report(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", path, "-o", tmp_path / "o")
    assert code == 2
    assert str(path) in err and "spec.slo.latencyMs" in err


@pytest.mark.parametrize(("args", "message"), [
    (["-f", "nope.yaml"], "nope.yaml: no such file or folder"),
    ([], "no input"),
    (["--from-cluster"], "--from-cluster needs --name"),
    (["-f", str(POOLS), "-f", str(SEED), "--min-rps", "100", "--max-rps", "10"], "--min-rps 100 must be below"),
    (["-f", str(POOLS), "-f", str(SEED), "--name", "other"], "--name other: no such InferenceDeployment"),
    (["-f", str(POOLS), "-f", str(SEED), "--points", "1"], "--points 1"),
])
def test_other_bad_input_exits_2_with_one_line(capsys, tmp_path, args, message):
    code, _, err = report(capsys, *args, "-o", tmp_path / "out")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_several_deployments_need_a_name(capsys, tmp_path):
    infd = yaml.safe_load((SEED / "inferencedeployment.yaml").read_text())
    infd["metadata"]["name"] = "seed-two"
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(infd))
    code, _, err = report(capsys, "-f", POOLS, "-f", SEED, "-f", path, "-o", tmp_path / "out")
    assert code == 2 and "choose one with --name" in err
    code, _, _ = report(capsys, "-f", POOLS, "-f", SEED, "-f", path, "--name", "seed-two", "--points", "20",
                        "-o", tmp_path / "out")
    assert code == 0 and json.loads((tmp_path / "out" / "report.json").read_text())["name"] == "seed-two"


@pytest.mark.parametrize(("report_dir", "inputs"), [
    ("seed", ["examples/hardwarepools.yaml", "examples/seed/"]),
    # A model the CPU pool really measured (a benchmark Job of the local cluster), against an H200.
    ("resnet", ["examples/hardwarepools.yaml", "examples/gpu/h200/modelprofiles-torch.yaml",
                "examples/measured/resnet/"]),
])
def test_the_committed_reports_are_what_the_command_writes_today(report_dir, inputs):
    """docs/reports/*/ are written by the command in their report.md; their data must still be
    what the engine gives (a change of the engine or the examples shows up here)."""
    from hybridplace.api import load_objects
    from hybridplace.cli.report import build

    folder = REPO / "docs" / "reports" / report_dir
    committed = json.loads((folder / "report.json").read_text())
    fresh = build(load_objects([REPO / x for x in inputs]))
    assert fresh["crossovers"] == committed["crossovers"]
    assert fresh["costPerHour"] == committed["costPerHour"]
    assert fresh["costPerMillion"] == committed["costPerMillion"]
    # The decision's figures (new fields in status.decision do not make the pictures stale).
    for key in ("feasible", "totalCostPerHour", "costPerMillion", "wattHoursPerMillion"):
        assert fresh["decision"][key] == committed["decision"][key], key
    assert [(p["pool"], p["replicas"], p["batchSize"]) for p in fresh["decision"]["placements"]] == [
        (p["pool"], p["replicas"], p["batchSize"]) for p in committed["decision"]["placements"]]
    command = f"hybridplace report {' '.join(f'-f {x}' for x in inputs)} -o docs/reports/{report_dir}"
    assert command in (folder / "report.md").read_text()


def test_loads_far_below_one_request_a_second_and_up_to_the_crds_bound_are_drawn(capsys, tmp_path):
    """Loads were rounded to 6 decimals, so 1e-9 requests/s became 0 and the table took its log;
    and with the caps lifted without bound, 1e7 requests/s took minutes of split search."""
    from hybridplace.api import load_objects
    from hybridplace.cli.report import MAX_SWEPT_REPLICAS, build, markdown

    data = build(load_objects([POOLS, SEED]), min_rps=1e-9, max_rps=1e7, points=12)
    assert min(data["loads"]) == 1e-9 and all(x > 0 for x in data["loads"])
    assert "| " in markdown(data)  # the table's rows are found on the log scale
    costs = dict(zip(data["loads"], data["costPerHour"]["chosen"], strict=True))
    assert costs[1e5] is not None  # 1,000 GPU replicas of the seed table
    assert costs[1e7] is None  # 100,000: past the most an InferenceDeployment may have
    assert MAX_SWEPT_REPLICAS == 10_000
    code, _, err = report(capsys, "-f", POOLS, "-f", SEED, "--min-rps", "1e-9", "--points", "12",
                          "-o", tmp_path / "low")
    assert code == 0, err


def test_a_deployment_no_load_can_serve_is_still_reported(capsys, tmp_path):
    """An SLO no pool meets at any load: every file is written and report.md says so (the cost
    figure's log scale had no positive value and raised, after two of five files were written)."""
    infd = write(tmp_path, "infd.yaml", seed_infd(slo={"latencyMs": 10}))
    code, out, err = report(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", infd, "-o", tmp_path / "o")
    assert code == 0, err
    for name in (*("latency-by-batch.png", "throughput-by-batch.png", "cost-vs-load.png"), "report.json"):
        assert (tmp_path / "o" / name).is_file(), name
    data = json.loads((tmp_path / "o" / "report.json").read_text())
    assert not data["decision"]["feasible"] and all(v is None for v in data["costPerHour"]["chosen"])
    assert "infeasible" in (tmp_path / "o" / "report.md").read_text().lower()
    assert (tmp_path / "o" / "cost-vs-load.png").read_bytes().startswith(PNG)


def test_an_output_that_cannot_be_written_exits_2_naming_it(capsys, tmp_path):
    out = tmp_path / "o"
    (out / "report.json").mkdir(parents=True)  # a folder where the file goes
    code, _, err = report(capsys, "-f", POOLS, "-f", SEED, "--points", "12", "-o", out)
    assert code == 2 and "report.json" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("gateway", [False, True])
def test_report_decides_as_recommend_and_the_operator_do(capsys, tmp_path, gateway):
    """Without a Gateway (spec.serving.gateway or --gateway) a split is spread evenly, as the
    operator does: the report drew weighted splits the operator would not make."""
    from hybridplace.api import load_objects
    from hybridplace.cli.recommend import recommend
    from hybridplace.cli.report import build

    infd = write(tmp_path, "infd.yaml", seed_infd(load={"targetRps": 120}))
    loaded = load_objects([POOLS, SEED / "modelprofiles.yaml", infd])
    want = recommend(loaded, gateway=gateway)[0]  # status.decision's fields, flat
    got = build(loaded, points=12, gateway=gateway)["decision"]
    assert (got["routing"], got["totalCostPerHour"]) == (want["routing"], want["totalCostPerHour"])
    assert [(p["pool"], p["replicas"]) for p in got["placements"]] == [
        (p["pool"], p["replicas"]) for p in want["placements"]]
    assert (got["routing"] == "Weighted") == gateway  # the case tells the two apart


def test_from_cluster_reads_as_the_operator_reads_two_profiles_and_a_stored_deployment(capsys, tmp_path):
    """The cluster may hold two ModelProfiles of one digest and pool (an import beside a
    measurement: the operator uses the newest measuredAt) and an InferenceDeployment stored
    before an admission-only rule (the operator reads it): neither is bad input there."""
    import copy

    from cases.mock_api import MockApi, Reply

    pools = [d for d in yaml.safe_load_all(POOLS.read_text()) if d]
    profiles = [d for d in yaml.safe_load_all((SEED / "modelprofiles.yaml").read_text()) if d]
    for p in profiles:
        p["metadata"]["namespace"] = "default"
    imported = copy.deepcopy(profiles[1])
    imported["metadata"]["name"] = "gpu-t4-imported"
    imported["spec"]["measuredAt"] = "2026-01-01T00:00:00Z"  # the other has none: the oldest
    infd = yaml.safe_load((SEED / "inferencedeployment.yaml").read_text())
    infd["metadata"]["namespace"] = "default"
    # Refused on create since (api/rules.py, admission_only); a stored one is still placed.
    infd["spec"]["benchmark"] = {"engine": "triton", "concurrency": [1, 2]}
    group = "/apis/hybridplace.io/v1alpha1"
    with MockApi() as api:
        api.on("GET", f"{group}/namespaces/default/inferencedeployments/seed", Reply(200, infd))
        api.on("GET", f"{group}/hardwarepools", Reply(200, {"items": pools}))
        api.on("GET", f"{group}/namespaces/default/modelprofiles", Reply(200, {"items": [*profiles, imported]}))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "m",
            "clusters": [{"name": "m", "cluster": {"server": api.url}}],
            "users": [{"name": "u", "user": {"token": "t"}}],
            "contexts": [{"name": "m", "context": {"cluster": "m", "user": "u"}}]}))
        code, _, err = report(capsys, "--from-cluster", "--name", "seed", "--kubeconfig", kubeconfig,
                              "--points", "12", "-o", tmp_path / "out")
    assert (code, err) == (0, "")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    gpu = next(p for p in data["pools"] if p["name"] == "gpu-t4")
    assert gpu["profile"].endswith("2026-01-01T00:00:00Z")  # the newest measuredAt
    # Files are not the cluster: the same two profiles in files are still refused.
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump_all([*profiles, imported]))
    code, _, err = report(capsys, "-f", POOLS, "-f", SEED / "inferencedeployment.yaml", "-f", path,
                          "-o", tmp_path / "o2")
    assert code == 2 and "a second ModelProfile" in err
