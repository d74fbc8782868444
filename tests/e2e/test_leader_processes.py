"""Two full operator processes against one cluster, with leader election (a Lease in the test's
namespace): only the holder acts, a SIGKILL of the holder hands over to the other once the Lease
expires (15 s), and the result is one set of children.

Who acted is read from the API server: each replica posts its Events with its own identity as
reportingInstance (hostname-pid-random, the identity in the Lease), and each logs when it starts
leading."""

from __future__ import annotations

import json
import signal

import pytest
from e2e_helpers import inference_deployment, seed_profile, start_operator_process, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

INFD = "hybridplace.io/inferencedeployment"
LEADS = "leads; reconciling"


def placed_on_cpu(name: str) -> dict:
    """builtin:delay with the seed table's profile on the CPU pool: placed with no benchmark."""
    return inference_deployment(name, model={"builtin": "delay"}, slo={"latencyMs": 1000}, load={"targetRps": 5},
                                placement={"pools": ["cpu-standard"], "mode": "Apply"},
                                benchmark={"batchSizes": [1, 10, 100]})


def reporters(kubectl, name: str) -> set[str]:
    """Who posted the Events about InferenceDeployment `name` (a Service of that name has others')."""
    events = kubectl.json("events", "--field-selector", f"involvedObject.name={name}")["items"]
    return {e.get("reportingInstance") for e in events if e["involvedObject"]["kind"] == "InferenceDeployment"}


def one_set_of_children(kubectl, name: str) -> list[str]:
    obj = kubectl.json("infd", name)
    uid = obj["metadata"]["uid"]
    deployments = kubectl.json("deployments", "-l", f"{INFD}={name}")["items"]
    for d in deployments:
        assert [r["uid"] for r in d["metadata"].get("ownerReferences") or []] == [uid], d["metadata"]
    assert len(deployments) == len(obj["status"]["decision"]["placements"]) == 1, deployments
    assert len(kubectl.json("services", "-l", f"{INFD}={name}")["items"]) == 1
    return [d["metadata"]["uid"] for d in deployments]


def test_two_operator_processes_one_acts_and_a_kill_hands_over(pools, kubectl, kubeconfig, namespace, tmp_path,
                                                               wait_until):
    kubectl.apply(seed_profile("cpu-standard"))

    def holder() -> str:
        found = kubectl("get", "lease", "hybridplace-operator", "-o", "json", check=False)
        return (json.loads(found or "{}").get("spec") or {}).get("holderIdentity") or ""

    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_operator_process(kubeconfig, logs[0], HP_LEADER_ELECTION_NAMESPACE=namespace)
    second = None
    try:
        wait_until(lambda: f"-{first.pid}-" in holder(), timeout=60, what="the first replica holding the Lease")
        second = start_operator_process(kubeconfig, logs[1], HP_LEADER_ELECTION_NAMESPACE=namespace)
        wait_until(lambda: "hybridplace operator started" in logs[1].read_text(), timeout=60,
                   what="the second replica started (watching, standing by)")

        kubectl.apply(placed_on_cpu("shared"))
        wait_condition(kubectl, "shared", "Placed", timeout=90)
        wait_event(kubectl, "shared", "Applied")
        children = one_set_of_children(kubectl, "shared")
        (reporter,) = reporters(kubectl, "shared")  # only the holder acted
        assert f"-{first.pid}-" in reporter, reporter
        assert LEADS not in logs[1].read_text()

        first.send_signal(signal.SIGKILL)  # no cleanup: the Lease is not given up, it must expire
        first.wait(timeout=30)
        wait_until(lambda: f"-{second.pid}-" in holder(), timeout=60, what="the second replica taking over")
        wait_until(lambda: LEADS in logs[1].read_text(), timeout=30, what="the second replica acting")

        # The new leader acts on what exists (a deleted child is recreated) and on what is new.
        (deployment,) = kubectl.json("deployments", "-l", f"{INFD}=shared")["items"]
        kubectl("delete", "deployment", deployment["metadata"]["name"], "--wait=false")
        wait_until(lambda: [d for d in kubectl.json("deployments", "-l", f"{INFD}=shared")["items"]
                            if d["metadata"]["uid"] not in children],
                   timeout=60, what="the deleted serving Deployment recreated by the new leader")
        kubectl.apply(placed_on_cpu("later"))
        wait_condition(kubectl, "later", "Placed", timeout=90)
        wait_event(kubectl, "later", "Applied")
        (reporter,) = reporters(kubectl, "later")
        assert f"-{second.pid}-" in reporter, reporter
        for name in ("shared", "later"):
            one_set_of_children(kubectl, name)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
    for log in logs:
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
