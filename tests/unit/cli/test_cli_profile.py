"""`hybridplace profile export` and `import` without a cluster: what is stripped and recorded
(pure functions), bad input (exit 2, one line naming the file and field, nothing written), and
the API server's failures against a mock API server (409, 404, 5xx, refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cases.mock_api import MockApi, Reply, status
from hybridplace.api import builtin_digest, parse_object
from hybridplace.cli import profile as cli
from hybridplace.cli.errors import UsageError
from hybridplace.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
H200 = EXAMPLES / "gpu" / "h200" / "modelprofiles-torch.yaml"
MLP = builtin_digest("mlp")
COLLECTION = "/apis/hybridplace.io/v1alpha1/namespaces/ns/modelprofiles"
NAMESPACE = "/api/v1/namespaces/ns"  # import reads each namespace before writing


def server_copy(doc: dict, namespace: str = "ns") -> dict:
    """A profile as the API server returns it: with everything the server owns."""
    out = json.loads(json.dumps(doc))
    out["metadata"].update(
        namespace=namespace, uid="4f1c", resourceVersion="812", generation=3,
        creationTimestamp="2026-11-30T01:00:00Z", selfLink="/x",
        managedFields=[{"manager": "kubectl", "operation": "Update"}],
        ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "o1"}],
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{...}", "team": "ml"})
    out["status"] = {"pointCount": 3, "conditions": []}
    return out


DOCS = [d for d in yaml.safe_load_all(H200.read_text()) if d]


def kubeconfig_for(tmp_path: Path, url: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "mock",
        "clusters": [{"name": "mock", "cluster": {"server": url}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "u", "namespace": "ns"}}]}))
    return str(path)


# -- what is exported ----------------------------------------------------------------------------

def test_export_strips_what_the_server_owns_and_keeps_the_measurement():
    out = cli.exportable(server_copy(DOCS[0]))
    assert set(out) == {"apiVersion", "kind", "metadata", "spec"}  # no status
    assert set(out["metadata"]) == {"name", "namespace", "labels", "annotations"}
    assert out["metadata"]["annotations"] == {"team": "ml"}  # kubectl's last-applied goes
    assert out["spec"] == DOCS[0]["spec"]
    parse_object(out)  # valid as it is: it can be created anywhere


def test_export_selects_by_name_and_digest_in_a_stable_order():
    items = [server_copy(d, ns) for ns in ("b", "a") for d in DOCS]
    mlp = cli.select(items, [], MLP)
    assert [(i["metadata"]["namespace"], i["spec"]["model"]["digest"]) for i in mlp] == [("a", MLP), ("b", MLP)]
    named = cli.select(items, [DOCS[1]["metadata"]["name"]], None)
    assert {i["metadata"]["name"] for i in named} == {DOCS[1]["metadata"]["name"]} and len(named) == 2


@pytest.mark.parametrize(("text", "expected"), [("builtin:mlp", MLP), (MLP, MLP)])
def test_a_digest_is_given_as_sha256_or_a_builtin(text, expected):
    assert cli.parse_digest(text) == expected


@pytest.mark.parametrize("text", ["sha256:abc", "builtin:nope", "md5:" + "0" * 32, MLP.upper()])
def test_a_bad_digest_is_bad_input(text):
    with pytest.raises(UsageError, match="--digest"):
        cli.parse_digest(text)


# -- what is imported ----------------------------------------------------------------------------

def test_import_records_provenance_and_source_and_drops_server_fields():
    profile = parse_object(server_copy(DOCS[0], "elsewhere"))
    body = cli.imported(profile, "h200.yaml#1", "ns")
    assert body["metadata"]["namespace"] == "ns"
    assert not set(body["metadata"]) & set(cli.SERVER_METADATA) and "status" not in body
    assert body["spec"]["provenance"] == "imported"
    assert body["spec"]["source"].startswith("imported from h200.yaml#1 (was measured: benchmarks/gpu_check.sh")
    assert body["spec"]["points"] == profile.to_dict()["spec"]["points"]
    named = cli.imported(profile, "h200.yaml#1", "ns", source="H200 run, 2026-11-30")
    assert named["spec"]["source"].startswith("imported from H200 run, 2026-11-30 (was measured")
    assert len(cli.imported(profile, "x" * 5000, "ns")["spec"]["source"]) <= 1024


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_bad_field_is_exit_2_naming_the_file_and_the_field(tmp_path, capsys):
    bad = json.loads(json.dumps(DOCS[0]))
    bad["spec"]["points"][0]["p95Ms"] = bad["spec"]["points"][0]["p50Ms"] / 2  # out of order
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with MockApi() as api:
        code, out, err = run(capsys, "profile", "import", "-f", str(path),
                             "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert not api.requests  # nothing written
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("hybridplace profile import: ")
    assert str(path) in err and "spec.points[0]" in err and "p50Ms <= p95Ms <= p99Ms" in err


def test_another_kind_is_bad_input(tmp_path, capsys):
    path = tmp_path / "pools.yaml"
    path.write_text((EXAMPLES / "hardwarepools.yaml").read_text())
    code, _, err = run(capsys, "profile", "import", "-f", str(path))
    assert code == 2 and "HardwarePool" in err and "only ModelProfile can be imported" in err


def test_the_same_profile_twice_is_bad_input(tmp_path, capsys):
    path = tmp_path / "twice.yaml"
    path.write_text(yaml.safe_dump_all([DOCS[0], DOCS[0]]))
    with MockApi() as api:
        code, _, err = run(capsys, "profile", "import", "-f", str(path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 2 and "metadata.name: also in" in err and "twice.yaml#1" in err


def test_a_missing_file_is_bad_input(capsys):
    code, _, err = run(capsys, "profile", "import", "-f", "/nonexistent/p.yaml")
    assert code == 2 and "/nonexistent/p.yaml: no such file or folder" in err


def test_no_profile_in_the_files_is_bad_input(tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("")
    code, _, err = run(capsys, "profile", "import", "-f", str(tmp_path / "empty.yaml"))
    assert code == 2 and "no ModelProfile in" in err


# -- against a mock API server: every answer it can give ---------------------------------------

def one_profile(tmp_path: Path) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(DOCS[0]))
    return str(path)


def test_import_creates_a_new_profile(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", NAMESPACE, Reply(200, {}))
        api.on("POST", COLLECTION, Reply(201, {}))
        code, out, _ = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        (created,) = api.calls("POST", COLLECTION)
    assert code == 0 and out.strip() == f"ModelProfile ns/{DOCS[0]['metadata']['name']} created"
    assert created["spec"]["provenance"] == "imported" and created["metadata"]["namespace"] == "ns"


def test_import_replaces_an_existing_profile_over_the_version_read(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", NAMESPACE, Reply(200, {}))
        api.on("POST", COLLECTION, status(409, "AlreadyExists"))
        api.on("GET", COLLECTION, Reply(200, server_copy(DOCS[0])))
        api.on("PUT", COLLECTION, Reply(200, {}))
        code, out, _ = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        (put,) = api.calls("PUT", COLLECTION)
    assert code == 0 and out.strip().endswith("replaced")
    assert put["metadata"]["resourceVersion"] == "812" and put["spec"]["provenance"] == "imported"


def test_a_profile_changed_meanwhile_is_tried_again_then_reported(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", NAMESPACE, Reply(200, {}))
        api.on("POST", COLLECTION, status(409, "AlreadyExists"))
        api.on("GET", COLLECTION, Reply(200, server_copy(DOCS[0])))
        api.on("PUT", COLLECTION, status(409, "Conflict", message="the object has been modified"))
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert len(api.calls("PUT", COLLECTION)) == 3
    assert code == 1 and "replacing ModelProfile ns/" in err and "409" in err and "(0 of 1 written)" in err


def test_a_profile_the_server_refuses_to_replace_is_exit_1_with_its_message(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", NAMESPACE, Reply(200, {}))
        api.on("POST", COLLECTION, status(409, "AlreadyExists"))
        api.on("GET", COLLECTION, Reply(200, server_copy(DOCS[0])))
        api.on("PUT", COLLECTION, status(422, "Invalid", message="spec.pool: pool is immutable"))
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 1 and "pool is immutable" in err


@pytest.mark.parametrize("failure", [status(500, "InternalError"), status(429, "TooManyRequests"), Reply(reset=True)])
def test_a_failing_server_is_exit_1(tmp_path, capsys, failure):
    with MockApi() as api:
        api.on("GET", NAMESPACE, Reply(200, {}))
        api.on("POST", COLLECTION, failure)
        api.on("GET", COLLECTION, failure)
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        code2, out2, err2 = run(capsys, "profile", "export", "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 1 and err.startswith("hybridplace profile import: creating ModelProfile ns/")
    assert code2 == 1 and out2 == "" and "listing ModelProfiles" in err2


def test_a_refused_connection_is_exit_1(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    code, _, err = run(capsys, "profile", "export", "--kubeconfig", kubeconfig_for(tmp_path, f"http://127.0.0.1:{port}"))
    assert code == 1 and "cannot reach the API server" in err


def test_crds_not_installed_or_no_namespace_is_bad_input(tmp_path, capsys):
    with MockApi() as api:  # every path: 404
        code, _, err = run(capsys, "profile", "export", "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert code == 2 and "are the hybridplace CRDs installed?" in err
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert code == 2 and 'namespaces "ns" not found' in err and not api.calls("POST", COLLECTION)
        api.on("GET", NAMESPACE, Reply(200, {}))  # the namespace is there, the CRDs are not
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 2 and "are the hybridplace CRDs installed?" in err


def two_namespaces(tmp_path: Path) -> str:
    """Two profiles, one for namespace team-a and one for team-b."""
    a, b = (json.loads(json.dumps(d)) for d in DOCS[:2])
    a["metadata"]["namespace"], b["metadata"]["namespace"] = "team-a", "team-b"
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([a, b]))
    return str(path)


A_PROFILES = "/apis/hybridplace.io/v1alpha1/namespaces/team-a/modelprofiles"
B_PROFILES = "/apis/hybridplace.io/v1alpha1/namespaces/team-b/modelprofiles"


def test_a_missing_namespace_is_found_before_anything_is_written(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", "/api/v1/namespaces/team-a", Reply(200, {"metadata": {"name": "team-a"}}))
        api.on("POST", A_PROFILES, Reply(201, {}))
        api.on("POST", B_PROFILES, Reply(201, {}))  # the namespace GET says team-b is not there
        code, out, err = run(capsys, "profile", "import", "-f", two_namespaces(tmp_path),
                             "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert api.calls("POST", "/apis") == []  # exit 2 means nothing written
        gets = [p for m, p, _ in api.requests if m == "GET"]
    assert gets == ["/api/v1/namespaces/team-a", "/api/v1/namespaces/team-b"]  # one GET per namespace
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "two.yaml#2: ModelProfile team-b/" in err and 'namespaces "team-b" not found' in err
    assert "nothing written" in err


def test_a_failure_after_a_write_is_exit_1_with_the_count_written(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", "/api/v1/namespaces/", Reply(200, {}))
        api.on("POST", A_PROFILES, Reply(201, {}))
        # team-b deleted between the check and the write: a 404 that would be bad input before any write.
        api.on("POST", B_PROFILES, status(404, "NotFound", message='namespaces "team-b" not found'))
        code, out, err = run(capsys, "profile", "import", "-f", two_namespaces(tmp_path),
                             "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 1 and out.startswith("ModelProfile team-a/") and out.strip().endswith("created")
    assert err.count("\n") == 1 and 'namespaces "team-b" not found' in err and "(1 of 2 written)" in err


def test_a_namespace_that_may_not_be_read_is_left_to_the_write(tmp_path, capsys):
    # An importer allowed to write ModelProfiles but not to read namespaces: the check is skipped.
    with MockApi() as api:
        api.on("GET", "/api/v1/namespaces/", status(403, "Forbidden", message="cannot get namespaces"))
        api.on("POST", "/apis/hybridplace.io/v1alpha1/namespaces/", Reply(201, {}))
        code, out, _ = run(capsys, "profile", "import", "-f", two_namespaces(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 0 and out.count(" created") == 2


def test_export_writes_yaml_without_server_fields_to_a_file(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", COLLECTION, Reply(200, {"items": [server_copy(d) for d in DOCS]}))
        target = tmp_path / "out.yaml"
        code, out, err = run(capsys, "profile", "export", "--digest", "builtin:mlp", "-f", str(target),
                             "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 0 and out == "" and "1 ModelProfile(s) written to" in err
    (doc,) = yaml.safe_load_all(target.read_text())
    assert doc["spec"]["model"]["digest"] == MLP and "status" not in doc and "uid" not in doc["metadata"]


def test_export_of_a_name_that_is_not_there_is_bad_input(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", COLLECTION, Reply(200, {"items": []}))
        code, out, err = run(capsys, "profile", "export", "nosuch", "--kubeconfig", kubeconfig_for(tmp_path, api.url))
    assert code == 2 and out == "" and "ModelProfile nosuch not found in namespace ns" in err


def test_export_passes_the_label_selector_and_reads_every_namespace_with_A(tmp_path, capsys):
    with MockApi() as api:
        api.on("GET", "/apis/hybridplace.io/v1alpha1/modelprofiles", Reply(200, {"items": []}))
        code, _, err = run(capsys, "profile", "export", "-A", "-l", "hybridplace.io/pool=gpu-h200",
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        (request,) = [p for m, p, _ in api.requests if m == "GET"]
    assert code == 0 and "no ModelProfile matched" in err
    assert request.startswith("/apis/hybridplace.io/v1alpha1/modelprofiles?labelSelector=hybridplace.io")


@pytest.mark.parametrize("failure", [status(500, "InternalError"), Reply(reset=True)])
def test_a_namespace_check_that_fails_is_exit_1_with_nothing_written(tmp_path, capsys, failure):
    """The check before the first write meets a failing server (5xx, a reset connection): exit 1,
    "0 of 1 written", and no write tried."""
    with MockApi() as api:
        api.on("GET", NAMESPACE, failure)
        api.on("POST", COLLECTION, Reply(201, {}))
        code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                           "--kubeconfig", kubeconfig_for(tmp_path, api.url))
        assert not api.calls("POST", COLLECTION)
    assert code == 1 and "(0 of 1 written)" in err, err


def test_a_namespace_check_against_no_server_is_exit_1(tmp_path, capsys):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    code, _, err = run(capsys, "profile", "import", "-f", one_profile(tmp_path),
                       "--kubeconfig", kubeconfig_for(tmp_path, f"http://127.0.0.1:{port}"))
    assert code == 1 and "(0 of 1 written)" in err, err
