"""`hybridplace explain` builds its report from an InferenceDeployment as the API server returns
it (no cluster here; tests/integration/cli runs it against the real one)."""

from hybridplace.cli.explain import report_from_object
from hybridplace.cli.render import render_table

DECISION = {
    "feasible": True, "objective": "cost",
    "placements": [{"pool": "cpu", "replicas": 2, "batchSize": 8, "shareRps": 40.0,
                    "predictedLatencyMs": 12.5, "utilisation": 0.5, "costPerHour": 0.4,
                    "watts": None, "costPerMillion": 2.7778, "wattHoursPerMillion": None}],
    "totalCostPerHour": 0.4, "totalWatts": None, "costPerMillion": 2.7778,
    "wattHoursPerMillion": None, "bestAchievableLatencyMs": None,
    "alternatives": [{"pool": "gpu", "reason": "NoProfile", "message": "no profile"}],
    "decidedAt": "2026-11-23T18:00:00Z",
}


def obj(status, generation=1):
    return {"metadata": {"name": "m", "namespace": "ns", "generation": generation},
            "spec": {"model": {"builtin": "mlp"}, "slo": {"latencyMs": 50},
                     "load": {"targetRps": 40}},
            "status": status}


def test_the_decision_fields_are_copied_and_the_message_is_the_placed_conditions():
    placed = {"type": "Placed", "status": "True", "reason": "Applied", "message": "placed: x"}
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION,
                                  "conditions": [placed]}))
    assert {k: got[k] for k in DECISION} == DECISION
    assert got["message"] == "placed: x"
    assert got["slo"] == {"percentile": 95, "latencyMs": 50}  # the CRD's default percentile
    assert got["modelDigest"].startswith("sha256:740e5c0c")  # builtin:mlp@1
    assert "note" not in got and "waiting" not in got
    # Cost per million inferences is shown; watt-hours are not, the pool having no power figure.
    table = render_table(got)
    assert "  CHOSEN: 2 replicas, 0.4 USD/h; 2.778 USD per million inferences" in table.splitlines()


def test_a_status_written_before_cost_per_million_existed_still_renders():
    old = {k: v for k, v in DECISION.items() if k not in ("costPerMillion", "wattHoursPerMillion")}
    got = report_from_object(obj({"observedGeneration": 1, "decision": old}))
    assert "costPerMillion" not in got
    assert "  CHOSEN: 2 replicas, 0.4 USD/h" in render_table(got).splitlines()


def test_a_kept_decision_while_the_operator_re_decides_is_flagged():
    placed = {"type": "Placed", "status": "False", "reason": "WaitingForProfiles",
              "message": "no decision yet: benchmarking"}
    got = report_from_object(obj({"observedGeneration": 2, "decision": DECISION,
                                  "conditions": [placed]}, generation=2))
    assert got["note"] == ("Placed is False (WaitingForProfiles): this is the last decision made, "
                           "kept while the operator re-decides")
    assert "  NOTE: Placed is False (WaitingForProfiles)" in render_table(got)


def test_without_a_decision_it_says_what_the_operator_is_waiting_for():
    profiled = {"type": "Profiled", "status": "False", "reason": "Benchmarking",
                "message": "0 of 2 pools measured or excluded; benchmarking the rest"}
    got = report_from_object(obj({"conditions": [profiled],
                                  "profiles": [{"pool": "cpu", "state": "Pending"}]}))
    assert "feasible" not in got
    assert got["waiting"] == "0 of 2 pools measured or excluded; benchmarking the rest"
    table = render_table(got)
    assert "  NO DECISION YET" in table
    assert "cpu   Pending" in table
