"""The Helm chart: lints, renders, carries exactly crds/, and its RBAC is enough for the real
operator: the operator runs with the chart's ServiceAccount token and places an
InferenceDeployment without a single Forbidden."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cases.chart_support import seed_as_delay, token_kubeconfig
from hybridplace.config import Settings

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "hybridplace"


@pytest.fixture(scope="module")
def helm():
    out = subprocess.run([str(REPO / "cluster" / "tools" / "build.sh"), "helm"], capture_output=True, text=True,
                         check=True, timeout=3600)
    return str(Path(out.stdout.strip().splitlines()[-1]) / "helm")


def render(helm, namespace, *values):
    sets = [x for v in values for x in ("--set", v)]
    out = subprocess.run([helm, "template", "hp", str(CHART), "--namespace", namespace, *sets],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_chart_lints(helm):
    result = subprocess.run([helm, "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("value", "named"), [
    ("settings.observeWindowSeconds=5", "observeWindowSeconds"),   # under the operator's 10
    ("settings.workers=0", "workers"),
    ("settings.prometheusUrl=prometheus:9090", "prometheusUrl"),    # no scheme
    ("settngs.workers=4", "settngs"),                                # a typo is refused, not ignored
    ("metrics.serviceMonitor.enabeld=true", "enabeld"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("replicas=two", "replicas"),
    ("settings.jobTtlSeconds=2147483648", "jobTtlSeconds"),           # an int32 in the Job: every Job refused
    ("settings.resyncSeconds=1e20", "resyncSeconds"),                 # would overflow the chart's int64
    ("startupSeconds=100000000000000", "startupSeconds"),             # the probe's failureThreshold is an int32
])
def test_values_the_operator_would_refuse_fail_the_install_naming_them(helm, value, named):
    """values.schema.json: helm refuses these before anything is installed; without it the
    operator would crash-loop on the setting, or the typo would be silently ignored."""
    result = subprocess.run([helm, "template", "hp", str(CHART), "--set", value], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0, f"helm accepted {value}"
    assert "schema" in result.stderr and named in result.stderr, result.stderr


@pytest.mark.parametrize(("values", "named"), [
    (["metrics.port=8080"], "metrics.port and livenessPort"),          # one port for both: a crash loop
    (["serviceAccount.create=false"], "serviceAccount.name"),           # roles bound to `default`
    (["settings.namespaces=team-a team-b"], '"team-a team-b"'),         # a space, not a comma
])
def test_values_fine_alone_that_do_not_work_together_fail_naming_them(helm, values, named):
    sets = [x for v in values for x in ("--set", v)]
    result = subprocess.run([helm, "template", "hp", str(CHART), *sets], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, f"helm accepted {values}"
    assert named in result.stderr, result.stderr


def test_an_https_prometheus_ca_from_a_configmap_is_mounted_where_the_operator_reads_it(helm):
    (deployment,) = [d for d in render(helm, "x", "settings.prometheusUrl=https://prometheus:9090",
                                       "settings.prometheusCaConfigMap=kube-root-ca.crt") if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "prometheus-ca"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "prometheus-ca"]
    assert volume["configMap"] == {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    assert env["HP_PROMETHEUS_CA_FILE"] == f"{mount['mountPath']}/ca.crt" and mount["readOnly"] is True
    (plain,) = [d for d in render(helm, "x") if d["kind"] == "Deployment"]
    assert {e["name"]: e["value"] for e in plain["spec"]["template"]["spec"]["containers"][0]["env"]}[
        "HP_PROMETHEUS_CA_FILE"] == ""


def test_long_release_names_and_odd_values_render_valid_names(helm, tmp_path):
    """A Service name is a DNS label (<= 63): the metrics Service's suffix came after the cut.
    Repeated namespaces get one Role each; dashboard labels set to null render."""
    release = "team-a-inference-operator-production-eu-west1"
    out = subprocess.run([helm, "template", release, str(CHART)], capture_output=True, text=True, check=True,
                         timeout=60).stdout
    services = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Service"]
    assert services and all(len(d["metadata"]["name"]) <= 63 for d in services)
    roles = [d for d in render(helm, "x", "settings.namespaces=a\\,a\\,b") if d["kind"] == "Role"]
    assert sorted(d["metadata"]["namespace"] for d in roles) == ["a", "b", "default", "x"]  # default: Events
    values = tmp_path / "values.yaml"
    values.write_text("metrics:\n  grafanaDashboard:\n    enabled: true\n    labels: null\n")
    result = subprocess.run([helm, "template", "hp", str(CHART), "-f", str(values)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_chart_crds_are_the_crds_folder_plus_keep(helm):
    rendered = {d["metadata"]["name"]: d for d in render(helm, "x") if d["kind"] == "CustomResourceDefinition"}
    source = {d["metadata"]["name"]: d for p in sorted((REPO / "crds").glob("*.yaml"))
              for d in [yaml.safe_load(p.read_text())]}
    assert rendered.keys() == source.keys()
    for name, crd in rendered.items():
        assert crd["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert crd == source[name]
    assert not [d for d in render(helm, "x", "crds.install=false") if d["kind"] == "CustomResourceDefinition"]
    check = subprocess.run([sys.executable, str(REPO / "hack" / "chart-crds.py"), "--check"], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout


def test_settings_become_environment_and_the_pod_is_restricted(helm):
    (deployment,) = [d for d in render(helm, "x", "settings.resyncSeconds=42", "settings.namespaces=a\\,b")
                     if d["kind"] == "Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["HP_RESYNC_SECONDS"] == "42" and env["HP_NAMESPACES"] == "a,b"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_every_setting_is_in_the_chart_and_whole_numbers_from_a_values_file_parse(helm, tmp_path, monkeypatch):
    """Helm reads numbers in a values file as floats; written with `quote`, 1209600 became
    "1.2096e+06", which an int setting refuses (the operator then crash-looped)."""
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"settings": {"jobTtlSeconds": 1209600, "resyncSeconds": 1000000,
                                                   "workers": 12, "calibrationWarmupSeconds": 1.5,
                                                   "gatewayCacheSeconds": 45}}))
    out = subprocess.run([helm, "template", "hp", str(CHART), "-f", str(values)], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    (deployment,) = [d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert {f.metadata["env"] for f in dataclasses.fields(Settings)} <= env.keys(), "a setting the chart cannot set"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    assert (settings.job_ttl_seconds, settings.resync_seconds, settings.workers) == (1209600, 1000000, 12)
    assert (settings.calibration_warmup_seconds, settings.gateway_cache_seconds) == (1.5, 45.0)
    assert env["HP_PROFILE_MAX_AGE_SECONDS"] == "2592000"  # the default, in digits


def test_a_slow_start_is_given_time_before_the_liveness_probe_counts(helm):
    (deployment,) = [d for d in render(helm, "x", "startupSeconds=600") if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    startup = container["startupProbe"]
    assert startup["httpGet"] == container["livenessProbe"]["httpGet"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 600


def test_the_operators_metrics_get_a_port_a_service_and_optional_monitors(helm):
    docs = render(helm, "x", "metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e["value"] for e in container["env"]}["HP_METRICS_PORT"] == "8081"
    assert {"name": "metrics", "containerPort": 8081, "protocol": "TCP"} in container["ports"]
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    # The Service selects the operator's pods; the ServiceMonitor selects the Service.
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pod_monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    assert [m["metadata"]["name"] for m in pod_monitors] == ["hp-hybridplace-operator"]
    assert pod_monitors[0]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    # The gauges' own `namespace` (the InferenceDeployment's) is kept, not the operator pod's.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert pod_monitors[0]["spec"]["podMetricsEndpoints"][0]["honorLabels"] is True
    # Defaults: the Service, no monitors (they need the Prometheus Operator's CRDs).
    kinds = [d["kind"] for d in render(helm, "x")]
    assert "Service" in kinds and "ServiceMonitor" not in kinds and "PodMonitor" not in kinds
    # Port 0: metrics off, and nothing points at them.
    off = render(helm, "x", "metrics.port=0", "metrics.serviceMonitor.enabled=true")
    assert not [d for d in off if d["kind"] in ("Service", "ServiceMonitor")]
    (deployment,) = [d for d in off if d["kind"] == "Deployment"]
    assert [p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]] == ["health"]


def test_the_grafana_dashboard_is_offered_as_a_configmap(helm):
    assert not [d for d in render(helm, "x") if d["kind"] == "ConfigMap"]  # off by default
    (config_map,) = [d for d in render(helm, "x", "metrics.grafanaDashboard.enabled=true") if d["kind"] == "ConfigMap"]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(config_map["data"]["hybridplace.json"])
    assert board == json.loads((CHART / "dashboards" / "hybridplace.json").read_text())


def test_the_dashboard_counts_each_deployment_once_however_many_operator_replicas_serve_it():
    """Every replica serves the state gauges (they read the shared cluster state): a panel that
    summed them showed twice the cost and replicas with two replicas. Each such expression first
    takes the max over replicas, by the gauge's own labels."""
    from hybridplace.controller.metrics import DEPLOYMENT_GAUGES, POOL_GAUGES

    state = {f"hybridplace_{n}" for n in {**DEPLOYMENT_GAUGES, **POOL_GAUGES}} | {
        "hybridplace_benchmark_jobs", "hybridplace_profile_age_seconds_max", "hybridplace_profile_age_seconds_min",
        "hybridplace_profiles"}
    board = json.loads((CHART / "dashboards" / "hybridplace.json").read_text())
    exprs = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    on_state = [e for e in exprs if any(re.search(rf"\b{m}\b", e) for m in state)]
    assert len(on_state) >= 9
    for expr in on_state:
        assert re.match(r"^(sum by \([a-z, ]+\) \()?max by \(", expr), expr


def test_namespaced_mode_renders_roles_per_namespace_and_a_cluster_role_without_them(helm):
    def scopes(docs):
        return {(d["kind"], d["metadata"].get("namespace")): {r for rule in d["rules"] for r in rule["resources"]}
                for d in docs if d["kind"] in ("ClusterRole", "Role")}

    everywhere = scopes(render(helm, "hp-system"))
    assert everywhere.keys() == {("ClusterRole", None), ("Role", "hp-system")}
    assert {"deployments", "jobs", "hardwarepools"} <= everywhere["ClusterRole", None]
    assert everywhere["Role", "hp-system"] == {"leases"}
    some = scopes(render(helm, "hp-system", "settings.namespaces=team-a\\, team-b\\,"))
    assert some.keys() == {("ClusterRole", None), ("Role", "team-a"), ("Role", "team-b"), ("Role", "hp-system"),
                           ("Role", "default")}
    assert not some["ClusterRole", None] & some["Role", "team-a"]
    moved = everywhere["ClusterRole", None] - some["ClusterRole", None]
    assert some["Role", "team-a"] == some["Role", "team-b"] == moved
    assert some["Role", "hp-system"] == {"leases"}
    # Events about HardwarePools: the API server takes those only in `default`.
    assert some["Role", "default"] == {"events"}
    bindings = [d for d in render(helm, "hp-system", "settings.namespaces=team-a") if d["kind"] == "RoleBinding"]
    assert {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in bindings} == {
        ("team-a", "hp-hybridplace"), ("hp-system", "hp-hybridplace-own"),
        ("default", "hp-hybridplace-hp-system-events")}
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "hp-hybridplace", "namespace": "hp-system"}]
               for b in bindings)


RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def _apply_chart_rbac(helm, kubectl, namespace, *values) -> list[dict]:
    """The chart's ServiceAccount, roles and bindings for a release in `namespace`, applied;
    cluster-scoped names made unique per test namespace."""
    docs = [d for d in render(helm, namespace, "crds.install=false", *values) if d["kind"] in RBAC_KINDS]
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] = f"hp-{namespace}"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"hp-{namespace}"
    listed = {"apiVersion": "v1", "kind": "List", "items": docs}
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(listed), text=True, check=True, capture_output=True)
    return docs


def _delete_cluster_scoped(kubectl, docs):
    """What the test namespace's deletion leaves: cluster-scoped objects, and the namespaced
    mode's Role and RoleBinding for Events in `default`."""
    for doc in docs:
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            subprocess.run([*kubectl, "delete", doc["kind"], doc["metadata"]["name"]], capture_output=True)
        elif doc["metadata"].get("namespace") == "default":
            subprocess.run([*kubectl, "delete", doc["kind"], doc["metadata"]["name"], "-n", "default"],
                           capture_output=True)


def _service_account_kubeconfig(kubectl, kubeconfig, namespace, docs, path: Path) -> str:
    sa = next(d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount")
    token = subprocess.run([*kubectl, "create", "token", sa, "-n", namespace, "--duration", "1h"],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert base64.urlsafe_b64decode(token.split(".")[1] + "==")  # a JWT
    return token_kubeconfig(kubeconfig, token, path)


def _place_seed_with(kubectl, sa_config, namespace, tmp_path, wait_until, env) -> str:
    """The operator as a local process with `sa_config` places the seed (builtin:delay) in
    `namespace`; returns its log."""
    subprocess.run([*kubectl, "apply", "-f", str(REPO / "examples" / "hardwarepools.yaml")], check=True,
                   capture_output=True)
    # The seed example's profiles and SLO, for builtin:delay: no benchmark runs, and the
    # serving pods the operator creates really start (the seed's own model URI is not
    # downloadable, and nothing here may reach out for it).
    subprocess.run([*kubectl, "apply", "-n", namespace, "-f", "-"], input=json.dumps(seed_as_delay()),
                   text=True, check=True, capture_output=True)
    log = tmp_path / "operator.log"
    env = {**os.environ, "KUBECONFIG": sa_config, "HP_METRICS_PORT": "0", **env}
    operator = subprocess.Popen([sys.executable, "-m", "hybridplace.cli", "run", "--kubeconfig", sa_config,
                                 "--liveness", ""], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env)
    try:
        def ready():
            out = subprocess.run([*kubectl, "get", "infd", "seed", "-n", namespace, "-o",
                                  "jsonpath={.status.conditions[?(@.type=='Ready')].status}"],
                                 capture_output=True, text=True).stdout
            return out == "True"

        wait_until(ready, timeout=180, what="Ready=True with the chart's RBAC",
                   detail=lambda: log.read_text()[-2000:])
        time.sleep(2)
    finally:
        operator.terminate()
        operator.wait(timeout=30)
    text = log.read_text()
    assert "Forbidden" not in text and " 403" not in text, text[-3000:]
    assert "could not post event" not in text, text[-3000:]  # e.g. one about a pool, refused (422)
    deployments = json.loads(subprocess.run([*kubectl, "get", "deployments", "-n", namespace, "-o", "json"],
                                            capture_output=True, text=True, check=True).stdout)["items"]
    assert deployments and deployments[0]["metadata"]["labels"]["hybridplace.io/inferencedeployment"] == "seed"
    return text


def test_the_operator_works_with_the_charts_rbac(helm, crds, kubeconfig, namespace, tmp_path, wait_until):
    kubectl = crds
    docs = _apply_chart_rbac(helm, kubectl, namespace)
    assert {d["kind"] for d in docs} == set(RBAC_KINDS)  # the Lease's Role, in the release's namespace
    try:
        sa_config = _service_account_kubeconfig(kubectl, kubeconfig, namespace, docs, tmp_path / "sa.kubeconfig")
        _place_seed_with(kubectl, sa_config, namespace, tmp_path, wait_until,
                         {"HP_NAMESPACES": namespace, "HP_LEADER_ELECTION_NAMESPACE": namespace})
    finally:
        _delete_cluster_scoped(kubectl, docs)


def test_namespaced_mode_places_in_its_namespace_and_is_refused_outside(helm, crds, kubeconfig, namespace,
                                                                        tmp_path, wait_until):
    """settings.namespaces set: namespaced kinds only through Roles in those namespaces; the
    ClusterRole keeps the cluster-scoped kinds alone. The operator, with exactly that, places
    the seed in its namespace, and its token is refused (403) in any other."""
    kubectl = crds
    docs = _apply_chart_rbac(helm, kubectl, namespace, f"settings.namespaces={namespace}")
    (cluster_role,) = [d for d in docs if d["kind"] == "ClusterRole"]
    assert not {r for rule in cluster_role["rules"] for r in rule["resources"]} & {
        "inferencedeployments", "deployments", "jobs", "services", "modelprofiles", "pods", "events"}
    roles = sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role")
    assert roles == sorted([(namespace, "hp-hybridplace"), (namespace, "hp-hybridplace-own"),
                            ("default", f"hp-hybridplace-{namespace}-events")])
    other = f"{namespace[:50]}-other"
    subprocess.run([*kubectl, "create", "namespace", other], check=True, capture_output=True)
    try:
        sa_config = _service_account_kubeconfig(kubectl, kubeconfig, namespace, docs, tmp_path / "sa.kubeconfig")
        log = _place_seed_with(kubectl, sa_config, namespace, tmp_path, wait_until,
                               {"HP_NAMESPACES": namespace, "HP_LEADER_ELECTION_NAMESPACE": namespace})
        assert "Not enough permissions" not in log, log[-3000:]  # kopf, when refused a list or watch
        as_operator = [str(REPO / "cluster" / "kubectl"), "--kubeconfig", sa_config]
        dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "probe", "namespace": other},
               "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                   "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
        for what, argv, stdin in [
            ("create a Deployment elsewhere", ["create", "-f", "-"], json.dumps(dep)),
            ("list Deployments elsewhere", ["get", "deployments", "-n", other], None),
            ("list Deployments cluster-wide", ["get", "deployments", "-A"], None),
            ("list InferenceDeployments cluster-wide", ["get", "inferencedeployments", "-A"], None),
        ]:
            refused = subprocess.run([*as_operator, *argv], input=stdin, capture_output=True, text=True)
            assert refused.returncode != 0 and "Forbidden" in refused.stderr, (what, refused.stdout, refused.stderr)
        raw = subprocess.run([*as_operator, "get", "--raw", f"/apis/apps/v1/namespaces/{other}/deployments", "-v=6"],
                             capture_output=True, text=True)
        assert raw.returncode != 0 and "403 Forbidden" in raw.stderr, raw.stderr[-2000:]
        allowed = subprocess.run([*as_operator, "get", "deployments", "-n", namespace, "-o", "name"],
                                 capture_output=True, text=True)
        assert allowed.returncode == 0 and allowed.stdout.strip(), allowed.stderr
    finally:
        subprocess.run([*kubectl, "delete", "namespace", other, "--wait=false"], capture_output=True)
        _delete_cluster_scoped(kubectl, docs)


def test_the_optional_podmonitor_scrapes_the_operators_serving_pods(helm):
    """Off by default; on, it selects exactly the pods the operator's Deployment builder makes,
    on the port that builder names `metrics`, in any namespace."""
    assert not [d for d in render(helm, "hp-system") if d["kind"] == "PodMonitor"]
    docs = render(helm, "hp-system", "monitoring.podMonitor.enabled=true", "monitoring.podMonitor.labels.release=kps")
    (monitor,) = [d for d in docs if d["kind"] == "PodMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"] == {"any": True}

    from cases.api_objects import inference_deployment
    from hybridplace.api import builtin_digest, load_objects, parse_object
    from hybridplace.builders.serving import build_serving_deployment

    pools = {p.obj.name: p.obj for p in load_objects([REPO / "examples" / "hardwarepools.yaml"])}
    obj = inference_deployment("svc")
    obj["metadata"].update(namespace="team-a", uid="1234-uid")
    infd = parse_object(obj)
    dep = build_serving_deployment(infd=infd, digest=builtin_digest("mlp"), pool=pools["cpu-standard"],
                                   replicas=1, batch_size=4, image="img")
    template = dep["spec"]["template"]
    labels = template["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
    annotated = int(template["metadata"]["annotations"]["prometheus.io/port"])
    assert endpoint["port"] == "metrics" and ports["metrics"] == annotated
    targets = {r["targetLabel"] for r in endpoint["relabelings"]}
    assert {"inferencedeployment", "pool", "namespace", "pod"} <= targets


def test_the_benchmark_egress_policy_is_optional_and_limits_benchmark_pods(helm):
    assert not [d for d in render(helm, "x") if d["kind"] == "NetworkPolicy"]
    docs = [d for d in render(helm, "x", "benchmarkEgress.enabled=true", "benchmarkEgress.namespaces={a,b}",
                              "benchmarkEgress.modelHostCIDRs={203.0.113.0/24}") if d["kind"] == "NetworkPolicy"]
    assert sorted(d["metadata"]["namespace"] for d in docs) == ["a", "b"]
    assert {d["metadata"]["name"] for d in docs} == {"hp-hybridplace-benchmark-egress"}  # per release
    spec = docs[0]["spec"]
    assert spec["podSelector"]["matchLabels"]["hybridplace.io/component"] == "benchmark"
    assert spec["policyTypes"] == ["Egress"]
    assert spec["egress"][1]["to"] == [{"ipBlock": {"cidr": "203.0.113.0/24"}}]
