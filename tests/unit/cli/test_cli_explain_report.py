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


def test_the_load_shown_is_the_one_the_operator_decided_at_not_the_target():
    # Scaling mode Operator decides at the observed load (status.scaling.loadRps), not at
    # spec.load.targetRps: the header, the infeasible sentence and the JSON say so.
    scaling = {"mode": "Operator", "loadRps": 200, "action": "up",
               "message": "observed 200 requests/s (was planned for 40)"}
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION, "scaling": scaling}))
    assert got["targetRps"] == 40
    assert got["loadRps"] == 200
    assert got["scaling"] == scaling
    table = render_table(got).splitlines()
    assert ("  load       200 requests/s (spec.load.targetRps 40; scaling Operator, up: observed 200 "
            "requests/s (was planned for 40))") in table
    infeasible = {"feasible": False, "objective": "cost", "placements": [], "bestAchievableLatencyMs": 80.0}
    got = report_from_object(obj({"observedGeneration": 1, "decision": infeasible, "scaling": scaling}))
    assert "  INFEASIBLE: no placement meets p95<=50ms at 200 requests/s; best achievable p95 is 80 ms" \
        in render_table(got).splitlines()


def test_the_load_is_the_target_when_the_operator_decided_at_the_target():
    scaling = {"mode": "Off", "loadRps": 40, "action": "static", "message": "spec.load.targetRps"}
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION, "scaling": scaling}))
    assert got["loadRps"] == 40
    assert "  load       40 requests/s" in render_table(got).splitlines()
    # A status without scaling (written before it existed): the decision was at the target.
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION}))
    assert got["loadRps"] == 40 and "scaling" not in got
    assert "  load       40 requests/s" in render_table(got).splitlines()


def test_a_current_decision_that_was_not_applied_shows_why_not_that_it_is_old():
    # ImageNotAllowed, NameConflict, ChildRejected: the decision is the current one, not applied;
    # the note is the condition's own message, not "the last decision made".
    message = ("not placed: image evil.example.com/x is not in --allowed-image-registries. "
               "Decision: p95<=50ms at 40 requests/s: 2 on cpu (batch 8); 0.4 USD/h")
    placed = {"type": "Placed", "status": "False", "reason": "ImageNotAllowed", "message": message}
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION, "conditions": [placed]}))
    assert got["note"] == f"Placed is False (ImageNotAllowed): {message}"
    assert "last decision made" not in render_table(got)
    for reason in ("NameConflict", "ChildRejected"):
        placed = {"type": "Placed", "status": "False", "reason": reason, "message": "not placed: why"}
        got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION, "conditions": [placed]}))
        assert got["note"] == f"Placed is False ({reason}): not placed: why"


def test_a_kept_decision_the_operator_cannot_re_make_says_why_and_that_it_is_the_last_one():
    placed = {"type": "Placed", "status": "False", "reason": "InvalidSpec",
              "message": "spec.benchmark.maxAge: must be 0 or at least 10s"}
    got = report_from_object(obj({"observedGeneration": 1, "decision": DECISION, "conditions": [placed]}))
    assert got["note"] == ("Placed is False (InvalidSpec): spec.benchmark.maxAge: must be 0 or at least 10s; "
                           "the decision shown is the last one made")
