"""The local pod runner (cluster/podrunner.py) runs benchmark pods as local processes and reports
their status the way a kubelet would; kwok leaves those pods alone."""

import json
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client

pytestmark = pytest.mark.cluster

BENCHMARK = {"hybridplace.io/component": "benchmark"}


def benchmark_job(name, code, *, env=(), active_deadline=None, labels=BENCHMARK):
    pod_spec = {"restartPolicy": "Never", "containers": [{
        "name": "worker", "image": "ghcr.io/hybridplace/worker-cpu:0.1.0",  # ignored locally
        "command": ["python", "-c"], "args": [code], "env": list(env)}]}
    if active_deadline:
        pod_spec["activeDeadlineSeconds"] = active_deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0,
                     "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec}}}


def job_condition(batch, namespace, name):
    """'Complete' or 'Failed' once the Job has finished, else None."""
    conditions = batch.read_namespaced_job_status(name, namespace).status.conditions or []
    for c in conditions:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c.type
    return None


def only_pod(core, namespace, job):
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def terminated(pod):
    return pod.status.container_statuses[0].state.terminated


def test_successful_run_reports_the_termination_message(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    code = ("import json, os, sys\n"
            "result = {'pod': os.environ['POD_NAME'], 'greeting': os.environ['GREETING'],\n"
            "          'python': sys.executable, 'cwd': os.getcwd()}\n"
            "open(os.environ['HP_TERMINATION_LOG'], 'w').write(json.dumps(result))\n")
    env = [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
           {"name": "GREETING", "value": "hello $(POD_NAME)"}]
    batch.create_namespaced_job(namespace, benchmark_job("ok", code, env=env))
    assert wait_until(lambda: job_condition(batch, namespace, "ok"), timeout=60,
                      what="the job to finish") == "Complete"
    pod = only_pod(core, namespace, "ok")
    assert pod.status.phase == "Succeeded"
    state = terminated(pod)
    assert state.exit_code == 0 and state.reason == "Completed"
    assert state.started_at <= state.finished_at
    result = json.loads(state.message)
    assert result["pod"] == pod.metadata.name
    assert result["greeting"] == f"hello {pod.metadata.name}"  # $(VAR) expanded
    # `python` resolves to the project environment's interpreter; the folder is a temporary one.
    assert Path(result["python"]).parent == Path(sys.executable).parent
    assert not Path(result["cwd"]).exists()


def test_termination_message_path_in_args_and_env_from(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"},
                                                  "data": {"MODEL": "mlp"}})
    # Writes to the path given as its argument: the container's terminationMessagePath.
    code = "import os, sys; open(sys.argv[1], 'w').write(os.environ['CFG_MODEL'])"
    job = benchmark_job("args", code)
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["args"] += ["/dev/termination-log"]
    container["envFrom"] = [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}]
    batch.create_namespaced_job(namespace, job)
    assert wait_until(lambda: job_condition(batch, namespace, "args"), timeout=60,
                      what="the job to finish") == "Complete"
    assert terminated(only_pod(core, namespace, "args")).message == "mlp"


def test_failing_run_fails_the_pod_and_the_job(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    code = ("import os, sys\n"
            "open(os.environ['HP_TERMINATION_LOG'], 'w').write('NoDevice: no GPU here')\n"
            "sys.exit(3)\n")
    batch.create_namespaced_job(namespace, benchmark_job("fails", code))
    # kwok's pod-complete stage would have marked this pod Succeeded: it must not touch it.
    assert wait_until(lambda: job_condition(batch, namespace, "fails"), timeout=60,
                      what="the job to finish") == "Failed"
    pod = only_pod(core, namespace, "fails")
    assert pod.status.phase == "Failed"
    state = terminated(pod)
    assert (state.exit_code, state.reason, state.message) == (3, "Error", "NoDevice: no GPU here")


def test_termination_message_is_capped_at_4096_bytes(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    code = "import os; open(os.environ['HP_TERMINATION_LOG'], 'w').write('x' * 10000)"
    batch.create_namespaced_job(namespace, benchmark_job("big", code))
    wait_until(lambda: job_condition(batch, namespace, "big"), timeout=60, what="the job")
    assert len(terminated(only_pod(core, namespace, "big")).message) == 4096


def test_active_deadline_kills_the_process(api_client, namespace, wait_until, tmp_path):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    batch.create_namespaced_job(namespace, benchmark_job("slow", code, active_deadline=2))
    started = time.monotonic()
    assert wait_until(lambda: job_condition(batch, namespace, "slow"), timeout=60,
                      what="the job to fail") == "Failed"
    assert time.monotonic() - started < 30
    pod = only_pod(core, namespace, "slow")
    assert pod.status.phase == "Failed" and pod.status.reason == "DeadlineExceeded"
    assert terminated(pod).exit_code == 128 + 15  # SIGTERM
    assert not process_exists(int(pid_file.read_text()))


def test_deleting_a_running_pod_kills_its_process(api_client, namespace, wait_until, tmp_path):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    batch.create_namespaced_job(namespace, benchmark_job("doomed", code))
    wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60,
               what="the process to start")
    pid = int(pid_file.read_text())
    pod = only_pod(core, namespace, "doomed")
    assert pod.status.phase == "Running"
    assert pod.status.container_statuses[0].state.running is not None
    assert process_exists(pid)
    batch.delete_namespaced_job("doomed", namespace,
                                body=client.V1DeleteOptions(propagation_policy="Foreground"))
    wait_until(lambda: not process_exists(pid), timeout=30, what=f"pid {pid} to be killed")
    wait_until(lambda: not core.list_namespaced_pod(namespace).items, timeout=30,
               what="the pod to be deleted")


def test_runs_one_pod_at_a_time(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    code = ("import json, os, time\n"
            "start = time.time(); time.sleep(1.0)\n"
            "open(os.environ['HP_TERMINATION_LOG'], 'w').write(json.dumps([start, time.time()]))\n")
    for i in range(3):
        batch.create_namespaced_job(namespace, benchmark_job(f"seq-{i}", code))
    for i in range(3):
        wait_until(lambda i=i: job_condition(batch, namespace, f"seq-{i}"), timeout=60,
                   what=f"job seq-{i}")
    spans = sorted(json.loads(terminated(only_pod(core, namespace, f"seq-{i}")).message)
                   for i in range(3))
    for (_, end), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert next_start >= end, spans  # no overlap: the benchmarks never shared the cores


def test_ordinary_job_pods_are_still_completed_by_kwok(api_client, namespace, wait_until):
    batch, core = client.BatchV1Api(api_client), client.CoreV1Api(api_client)
    # Exits 3 if it ever ran: without the benchmark label, kwok completes it without running it.
    batch.create_namespaced_job(namespace, benchmark_job("plain", "raise SystemExit(3)",
                                                         labels={"app": "plain"}))
    assert wait_until(lambda: job_condition(batch, namespace, "plain"), timeout=60,
                      what="the job") == "Complete"
    assert terminated(only_pod(core, namespace, "plain")).exit_code == 0


def process_exists(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"

