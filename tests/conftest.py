"""Fixtures shared by every test folder. Area-specific fixtures belong in that folder's conftest.py.

The local cluster (docs/local-cluster.md):
  local_cluster  session  LocalCluster(name, kubeconfig, state_dir, started): brings the cluster up
                          once per session, or reuses a running one; stops it at the end only if it
                          started it and no other test run still uses it (HP_KEEP_CLUSTER=1 keeps
                          it running).
  kubeconfig     session  str, path of the admin kubeconfig (group system:masters).
  prometheus_url session  str, the local cluster's Prometheus (scraping serving pods every 5 s).
  api_client     session  kubernetes.client.ApiClient for that kubeconfig.
  namespace      function str, a fresh namespace for one test, deleted afterwards.
  wait_until     function wait_until(check, timeout=60, interval=0.5, what="...") -> check's value
                          bounded poll: returns the first truthy value of check(), else fails.
  report         function report(line): the line is printed in the session summary
                          ("local cluster" section), e.g. a measured start-up time.
Tests that use the cluster are marked @pytest.mark.cluster.
"""

import json
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Property tests explore new random examples on every local run (that is how they find bugs), but
# CI must be repeatable: there they replay the same derandomized examples. A failure found
# locally is kept in .hypothesis/ and replayed first (tests/unit/placement/test_placement_within_slo.py
# keeps one found that way: a prediction over the SLO where latency is not monotone in load).
try:
    from hypothesis import settings as _hypothesis_settings

    _hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        _hypothesis_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is in requirements-dev.txt
    pass
LOCALCLUSTER = REPO / "cluster" / "localcluster.py"


REPORT = pytest.StashKey[list]()


def pytest_configure(config):
    config.stash[REPORT] = []


def pytest_terminal_summary(terminalreporter, config):
    if config.stash.get(REPORT, None):
        terminalreporter.section("local cluster")
        for line in config.stash[REPORT]:
            terminalreporter.write_line(line)


@pytest.fixture
def report(request):
    return request.config.stash[REPORT].append


@dataclass(frozen=True)
class LocalCluster:
    name: str
    kubeconfig: str
    state_dir: str
    started: bool  # True if this session started it (and so stops it)


@pytest.fixture(scope="session")
def local_cluster(request):
    name = os.environ.get("HP_CLUSTER", "hybridplace")
    # A child process starts the servers, so they are not children of pytest.
    # Attached as a session, so another test run reusing this cluster is not pulled from under
    # it: the last session out stops it if the one that started it would have.
    session = ["--name", name, "--session", str(os.getpid())]
    up = subprocess.run([sys.executable, str(LOCALCLUSTER), "up", "--json", *session],
                        stdout=subprocess.PIPE, text=True, timeout=3600)
    if up.returncode != 0:
        pytest.fail(f"local cluster '{name}' did not come up (exit {up.returncode}); "
                    f"see the output above and $HP_CACHE/clusters/{name}/logs", pytrace=False)
    info = json.loads(up.stdout)
    request.config.stash[REPORT].append(
        f"cluster '{name}' {'started' if info['started'] else 'reused'} in {info['seconds']} s "
        f"for this session; KUBECONFIG={info['kubeconfig']}")
    yield LocalCluster(name, info["kubeconfig"], info["dir"], info["started"])
    stop = info["started"] and os.environ.get("HP_KEEP_CLUSTER") != "1"
    subprocess.run([sys.executable, str(LOCALCLUSTER), "release", *session,
                    *(["--stop"] if stop else [])], check=True, timeout=120)


@pytest.fixture(scope="session")
def kubeconfig(local_cluster):
    return local_cluster.kubeconfig


@pytest.fixture(scope="session")
def prometheus_url(local_cluster):
    """The local cluster's Prometheus (it scrapes the serving pods every 5 s)."""
    state = json.loads((Path(local_cluster.state_dir) / "state.json").read_text())
    if not state.get("prometheus_url"):
        pytest.fail(f"cluster '{local_cluster.name}' runs no Prometheus", pytrace=False)
    return state["prometheus_url"]


@pytest.fixture(scope="session")
def api_client(kubeconfig):
    from kubernetes import config

    client = config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


def poll(check, timeout=60, interval=0.5, what=None, detail=None):
    """Call check() until it returns something truthy (returned) or timeout seconds pass (fail,
    with detail() in the message when given: what was seen last)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; last seen: {detail()}" if detail is not None else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what or check}{seen}", pytrace=False)
        time.sleep(interval)


@pytest.fixture
def wait_until():
    return poll


@pytest.fixture
def namespace(api_client, request):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api_client)
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].rstrip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"hybridplace.io/test": "true"})))

    def default_sa():  # pods are rejected until the namespace's default ServiceAccount exists
        try:
            return core.read_namespaced_service_account("default", name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    poll(default_sa, timeout=30, interval=0.2, what=f"ServiceAccount default in {name}")
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as e:
        if e.status != 404:
            raise


@pytest.fixture(scope="session")
def crds(kubeconfig):
    """The project's CRDs (crds/), applied server-side and Established."""
    kubectl = [str(REPO / "cluster" / "kubectl"), "--kubeconfig", kubeconfig]
    crds_dir = str(REPO / "crds")
    subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts", "-f", crds_dir],
                   check=True, capture_output=True, text=True, timeout=60)
    subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s",
                    "-f", crds_dir], check=True, capture_output=True, text=True, timeout=90)
    return kubectl
