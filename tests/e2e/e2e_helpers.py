"""Helpers of the end-to-end tests: kubectl with JSON, InferenceDeployment bodies, an operator
in its own process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Small, quick benchmarks: the flow is under test here, not the figures.
QUICK_BENCHMARK = {"batchSizes": [1, 4, 16], "durationSeconds": 0.3, "budgetSeconds": 180}


class Kubectl:
    def __init__(self, base: list[str], namespace: str | None = None):
        self.base = base
        self.namespace = namespace

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        scope = ["-n", self.namespace] if self.namespace else []
        result = subprocess.run([*self.base, *scope, *args], input=stdin, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {result.stderr}")
        return result.stdout

    def json(self, *args: str) -> dict:
        return json.loads(self("get", *args, "-o", "json"))

    def apply(self, obj: dict) -> str:
        return self("apply", "-f", "-", stdin=json.dumps(obj))

    def condition(self, kind: str, name: str, type_: str) -> dict | None:
        obj = json.loads(self("get", kind, name, "-o", "json", check=False) or "{}")
        return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)

    def events(self, name: str) -> list[dict]:
        items = self.json("events", "--field-selector", f"involvedObject.name={name}")["items"]
        return [{"type": e["type"], "reason": e["reason"], "message": e["message"]} for e in items]


def inference_deployment(name: str, **spec) -> dict:
    body = {
        "apiVersion": "hybridplace.io/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"builtin": "mlp"},
            "slo": {"percentile": 95, "latencyMs": 500},
            "load": {"targetRps": 20, "minReplicas": 1, "maxReplicas": 4},
            "placement": {"pools": ["cpu-standard", "gpu-t4"]},
            "benchmark": QUICK_BENCHMARK,
        },
    }
    for key, value in spec.items():
        merge = isinstance(value, dict) and key != "model"  # a model is replaced whole
        body["spec"][key] = {**body["spec"].get(key, {}), **value} if merge else value
    return body


def seed_profile(pool: str, builtin: str = "delay") -> dict:
    """examples/seed's CPU table as a ModelProfile of a builtin model on `pool`: an
    InferenceDeployment of that model on that pool is placed with no benchmark."""
    import copy

    import yaml
    from hybridplace.api import builtin_digest
    from hybridplace.builders import names

    digest = builtin_digest(builtin)
    seed = Path(__file__).resolve().parents[2] / "examples" / "seed" / "modelprofiles.yaml"
    profile = copy.deepcopy(next(d for d in yaml.safe_load_all(seed.read_text()) if d))
    profile["metadata"] = {"name": names.profile_name(digest, pool),
                           "labels": {names.LABEL_POOL: pool, names.LABEL_DIGEST: names.digest_label(digest)}}
    profile["spec"].update(pool=pool, model={"digest": digest, "name": f"builtin:{builtin}", "format": "torchscript"})
    return profile


def start_operator_process(kubeconfig: str, log: Path, **env: str) -> subprocess.Popen:
    """The operator as `hybridplace run` runs it, in its own process (for kill and restart), with
    `env` added to its environment (HP_CRASH_AT, HP_LEADER_ELECTION_NAMESPACE, ...)."""
    env = {"HP_METRICS_PORT": "0", **os.environ, "KUBECONFIG": kubeconfig, "HP_RESYNC_SECONDS": "20",
           "HP_WORKERS": "4", **env}
    out = log.open("ab")
    return subprocess.Popen([sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", kubeconfig,
                             "--liveness", ""], stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_condition(kubectl: Kubectl, name: str, type_: str, status: str = "True", timeout: float = 240,
                   reason: str | None = None) -> dict:
    """Poll an InferenceDeployment until condition `type_` has `status` (and `reason`); on timeout,
    fail with its conditions and Events, so a failure says why."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        found = kubectl.condition("infd", name, type_)
        if found and found["status"] == status and (reason is None or found["reason"] == reason):
            return found
        if time.monotonic() > deadline:
            obj = json.loads(kubectl("get", "infd", name, "-o", "json", check=False) or "{}")
            conds = [(c["type"], c["status"], c["reason"], c["message"]) for c in
                     (obj.get("status") or {}).get("conditions") or []]
            pytest.fail(f"{name}: {type_} did not become {status} in {timeout} s; conditions: {conds}; "
                        f"events: {kubectl.events(name)}", pytrace=False)
        time.sleep(1)


def wait_event(kubectl: Kubectl, name: str, reason: str, type_: str | None = None, contains: str = "",
               timeout: float = 30) -> dict:
    """The first Event about `name` with `reason` (and `type_`, and `contains` in its message).
    The operator posts Events from a thread of its own, a moment after the status they follow."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while True:
        events = kubectl.events(name)
        for event in events:
            if event["reason"] == reason and type_ in (None, event["type"]) and contains in event["message"]:
                return event
        if time.monotonic() > deadline:
            pytest.fail(f"{name}: no {type_ or ''} Event {reason} ({contains!r}) in {timeout} s; events: {events}",
                        pytrace=False)
        time.sleep(0.5)


@contextlib.contextmanager
def running_operator(kubeconfig: str, **env: str):
    """The operator in this process, as kopf runs it (KopfRunner), with `env` set for its
    settings (short resyncs here); checks on the way out that it never raised."""
    from kopf.testing import KopfRunner

    # No metrics port unless a test asks for one: test runs side by side must not fight over it.
    env = {"KUBECONFIG": kubeconfig, "HP_RESYNC_SECONDS": "20", "HP_WORKERS": "4", "HP_METRICS_PORT": "0", **env}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from hybridplace.controller import handlers

    handlers.OPERATOR.settings = None  # read the environment above
    handlers.OPERATOR.kubeconfig = kubeconfig
    args = ["run", "--standalone", "--all-namespaces", "-m", "hybridplace.controller.handlers"]
    try:
        with KopfRunner(args, timeout=60) as runner:
            time.sleep(2)  # startup: login, lists, watches
            yield runner
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        handlers.OPERATOR.settings = None
    assert runner.exception is None, runner.output[-4000:]
    assert "Traceback" not in runner.output, runner.output[-4000:]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def scraped_by_prometheus(state_dir: str, port: int):
    """The local cluster's Prometheus scrapes http://127.0.0.1:PORT/metrics (job
    hybridplace-operator, cluster/prometheus.yml) while inside: a file_sd target file."""
    targets = Path(state_dir) / "operator-targets"
    if not targets.is_dir():
        import pytest

        pytest.fail(f"{targets} is missing: the cluster was started before the operator's scrape job "
                    f"existed; restart it (cluster/localcluster.py down, then up)", pytrace=False)
    path = targets / f"test-{os.getpid()}-{port}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"operator": f"test-{port}"}}]))
    tmp.rename(path)  # whole, never half-written
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def prometheus_query(prometheus_url: str, promql: str) -> list[dict]:
    """The instant query's result vector (each: metric labels, value)."""
    import urllib.parse
    import urllib.request

    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise AssertionError(f"{promql}: {body}")
    return body["data"]["result"]
