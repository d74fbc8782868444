"""`hybridplace profile export` and `import` against the real API server: GPU profiles measured
elsewhere (examples/gpu/h200) are applied in one namespace, exported without server fields,
imported into another as provenance imported with their source, imported again (replaced), and
the server's own refusals (CEL: a profile re-pointed at another model) come back as exit 1."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from hybridplace.api import builtin_digest
from hybridplace.cli.main import main

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]
H200 = REPO / "examples" / "gpu" / "h200" / "modelprofiles-torch.yaml"
SERVER_FIELDS = {"uid", "resourceVersion", "managedFields", "creationTimestamp", "generation"}


def kubectl(crds, *args, stdin=None):
    done = subprocess.run([*crds, *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def other_namespace(crds):
    name = f"profile-import-{uuid.uuid4().hex[:6]}"
    kubectl(crds, "create", "namespace", name)
    yield name
    subprocess.run([*crds, "delete", "namespace", name, "--wait=false"], capture_output=True, timeout=60)


def cli(capsys, kubeconfig, *args):
    code = main([*args, "--kubeconfig", kubeconfig])
    out, err = capsys.readouterr()
    return code, out, err


def profiles(crds, namespace):
    return {p["metadata"]["name"]: p for p in json.loads(kubectl(crds, "get", "mprof", "-n", namespace, "-o",
                                                                   "json"))["items"]}


def test_export_then_import_moves_profiles_between_namespaces(crds, namespace, other_namespace, kubeconfig,
                                                              capsys, tmp_path):
    kubectl(crds, "apply", "-n", namespace, "-f", str(H200))
    original = profiles(crds, namespace)
    assert len(original) == 3
    exported = tmp_path / "h200.yaml"
    code, out, err = cli(capsys, kubeconfig, "profile", "export", "-n", namespace, "-f", str(exported))
    assert (code, out) == (0, "") and "3 ModelProfile(s) written" in err
    docs = [d for d in yaml.safe_load_all(exported.read_text()) if d]
    assert len(docs) == 3
    for doc in docs:
        assert not SERVER_FIELDS & set(doc["metadata"]) and "status" not in doc
        assert "kubectl.kubernetes.io/last-applied-configuration" not in (doc["metadata"].get("annotations") or {})
        assert doc["spec"] == original[doc["metadata"]["name"]]["spec"]  # the measurement, whole

    code, out, err = cli(capsys, kubeconfig, "profile", "import", "-f", str(exported), "-n", other_namespace,
                         "--source", "H200 check, 2026-11-30")
    assert (code, err) == (0, "") and out.count(" created\n") == 3
    moved = profiles(crds, other_namespace)
    assert set(moved) == set(original)
    for name, profile in moved.items():
        assert profile["spec"]["provenance"] == "imported"
        assert profile["spec"]["source"].startswith("imported from H200 check, 2026-11-30 (was measured: ")
        assert profile["spec"]["points"] == original[name]["spec"]["points"]
        assert profile["spec"]["measuredAt"] == original[name]["spec"]["measuredAt"]

    # Again: replaced whole, over the version read.
    code, out, _ = cli(capsys, kubeconfig, "profile", "import", "-f", str(exported), "-n", other_namespace)
    assert code == 0 and out.count(" replaced\n") == 3
    again = profiles(crds, other_namespace)
    assert all(again[n]["metadata"]["resourceVersion"] != moved[n]["metadata"]["resourceVersion"] for n in moved)


def test_export_by_digest_and_selector(crds, namespace, kubeconfig, capsys):
    kubectl(crds, "apply", "-n", namespace, "-f", str(H200))
    code, out, _ = cli(capsys, kubeconfig, "profile", "export", "-n", namespace, "--digest", "builtin:mlp")
    (doc,) = [d for d in yaml.safe_load_all(out) if d]
    assert code == 0 and doc["spec"]["model"]["digest"] == builtin_digest("mlp")
    code, out, err = cli(capsys, kubeconfig, "profile", "export", "-n", namespace, "-l", "hybridplace.io/pool=other")
    assert (code, out) == (0, "") and "no ModelProfile matched" in err


def test_the_servers_refusal_is_exit_1_with_its_message(crds, namespace, kubeconfig, capsys, tmp_path):
    kubectl(crds, "apply", "-n", namespace, "-f", str(H200))
    doc = next(d for d in yaml.safe_load_all(H200.read_text()) if d)
    doc["spec"]["model"]["digest"] = "sha256:" + "0" * 64  # same name, another model: immutable
    path = tmp_path / "repointed.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, _, err = cli(capsys, kubeconfig, "profile", "import", "-f", str(path), "-n", namespace)
    assert code == 1 and "model.digest is immutable" in err and "replacing ModelProfile" in err


def test_bad_input_is_exit_2_and_nothing_is_written(crds, namespace, kubeconfig, capsys, tmp_path):
    doc = next(d for d in yaml.safe_load_all(H200.read_text()) if d)
    doc["spec"]["pool"] = "Not_A_Pool"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, out, err = cli(capsys, kubeconfig, "profile", "import", "-f", str(path), "-n", namespace)
    assert (code, out) == (2, "") and str(path) in err and "spec.pool" in err
    assert profiles(crds, namespace) == {}
