"""How `-f` paths are read (api/files.py, shared by recommend, report and profile import): what
kubectl would refuse is refused (a key given twice), what kubectl reads is read (`-` for
standard input, a pipe, upper-case suffixes), the same file given twice is read once, and a
document that is not an object says so with its number."""

from __future__ import annotations

import io
import json
import os
import sys
import threading
from pathlib import Path

import pytest
import yaml
from hybridplace.api import FileProblem, load_objects
from hybridplace.cli.main import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
POOLS = EXAMPLES / "hardwarepools.yaml"
SEED = EXAMPLES / "seed"


def recommend(capsys, *args):
    code = main(["recommend", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def bad(capsys, *args):
    """The one line of a refused input (exit 2, nothing on stdout)."""
    code, out, err = recommend(capsys, *args)
    assert (code, out) == (2, ""), err
    (line,) = err.strip().splitlines()
    return line


# --- a key given twice -------------------------------------------------------------------------


def test_a_key_given_twice_is_refused_naming_the_file_line_and_key(tmp_path, capsys):
    path = tmp_path / "infd.yaml"
    path.write_text((SEED / "inferencedeployment.yaml").read_text().replace(
        "    latencyMs: 1000\n", "    latencyMs: 1000\n    latencyMs: 10\n"))
    line = bad(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", path)
    assert f"{path} (line " in line and "not valid YAML" in line
    assert "key 'latencyMs' is given twice" in line
    # The line is the second one's, and the first one's is named.
    second = 1 + path.read_text().splitlines().index("    latencyMs: 10")
    assert f"(line {second}, column 5)" in line and f"first at line {second - 1}" in line


def test_a_key_given_twice_in_json_is_refused_and_yaml_merge_keys_still_override(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text('{"apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "kind": "X"}')
    with pytest.raises(FileProblem, match="key 'kind' is given twice"):
        load_objects([path])
    # A merge key (<<) is not a key given twice: the mapping's own key wins, as YAML says.
    merged = tmp_path / "merged.yaml"
    text = ("apiVersion: hybridplace.io/v1alpha1\nkind: HardwarePool\nmetadata: {name: m}\n"
            "spec:\n  accelerator: {type: cpu}\n  nodeSelector: {pool: m}\n  price: {perReplicaHour: 1}\n"
            "  replicaResources:\n    requests: &req {cpu: '1', memory: 1Gi}\n"
            "    limits:\n      <<: *req\n      cpu: '2'\n")
    merged.write_text(text)
    (loaded,) = load_objects([merged])
    assert loaded.obj.to_dict()["spec"]["replicaResources"]["limits"]["cpu"] == "2"


# --- standard input, pipes, the same file twice ------------------------------------------------


def test_dash_reads_standard_input(monkeypatch, capsys):
    text = (SEED / "inferencedeployment.yaml").read_text()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    code, out, err = recommend(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", "-", "-o", "json")
    assert (code, err) == (0, "")
    got = json.loads(out)
    assert got["name"] == "seed" and got["source"] == "<stdin>"


def test_standard_input_over_the_size_limit_is_refused(monkeypatch, capsys):
    from hybridplace.api import files

    monkeypatch.setattr(files, "MAX_FILE_BYTES", 1000)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"#" * 2000)))
    line = bad(capsys, "-f", "-")
    assert "<stdin>: more than 1000 bytes" in line


def test_a_pipe_and_dev_null_are_read_as_streams(tmp_path, capsys):
    fifo = tmp_path / "infd.fifo"
    os.mkfifo(fifo)
    text = (SEED / "inferencedeployment.yaml").read_bytes()

    def feed():
        with open(fifo, "wb") as pipe:
            pipe.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    code, out, err = recommend(capsys, "-f", POOLS, "-f", SEED / "modelprofiles.yaml", "-f", fifo,
                               "-f", os.devnull, "-o", "json")
    writer.join(timeout=5)
    assert (code, err) == (0, ""), err
    assert json.loads(out)["source"] == str(fifo)
    # A path that is not there is still that.
    assert f"{tmp_path / 'nope.yaml'}: no such file or folder" in bad(capsys, "-f", tmp_path / "nope.yaml")


def test_the_same_file_given_twice_is_read_once(capsys):
    infd = SEED / "inferencedeployment.yaml"
    code, out, err = recommend(capsys, "-f", POOLS, "-f", SEED, "-f", infd, "-f", f"{SEED}/../seed/{infd.name}",
                               "-f", POOLS, "-o", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["name"] == "seed"  # one report: one InferenceDeployment


# --- documents that are not objects ------------------------------------------------------------


@pytest.mark.parametrize(("text", "what"), [
    ("apiVersion: v1\nkind: List\nitems: []\n---\n- {kind: HardwarePool}\n", "a list"),
    ("apiVersion: v1\nkind: List\nitems: []\n---\nhello\n", "a string"),
])
def test_a_document_that_is_not_a_mapping_is_named_by_its_number(tmp_path, capsys, text, what):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    line = bad(capsys, "-f", path)
    assert line == (f"hybridplace recommend: {path}#2: expected a Kubernetes object (a mapping), not {what}")


def test_a_single_document_that_is_a_list_is_named_too(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("- apiVersion: hybridplace.io/v1alpha1\n  kind: HardwarePool\n")
    assert bad(capsys, "-f", path).endswith(f"{path}#1: expected a Kubernetes object (a mapping), not a list")


def test_an_item_of_a_list_that_is_not_a_mapping_is_named_by_its_index(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems: [3]\n")
    assert bad(capsys, "-f", path).endswith(f"{path}: items[0]: expected a Kubernetes object (a mapping), not a number")


def test_an_object_without_a_kind_says_kind_is_required(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: hybridplace.io/v1alpha1\nmetadata: {name: web}\n")
    line = bad(capsys, "-f", path)
    assert f"{path}: object web: kind: required value (one of HardwarePool, ModelProfile, " \
           "InferenceDeployment)" in line


def test_a_list_whose_items_are_null_is_refused(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("apiVersion: v1\nkind: List\nitems: null\n")
    assert "items: must be a list of objects, not null (write items: [] for none)" in bad(capsys, "-f", path)


def test_upper_case_suffixes_are_read_from_a_folder(tmp_path, capsys):
    (tmp_path / "POOLS.YAML").write_text(POOLS.read_text())
    (tmp_path / "profiles.Yml").write_text((SEED / "modelprofiles.yaml").read_text())
    (tmp_path / "INFD.JSON").write_text(json.dumps(yaml.safe_load((SEED / "inferencedeployment.yaml").read_text())))
    (tmp_path / "notes.txt").write_text("not read")
    code, out, err = recommend(capsys, "-f", tmp_path, "-o", "json")
    assert (code, err) == (0, "")
    got = json.loads(out)
    assert got["source"] == str(tmp_path / "INFD.JSON") and got["feasible"] is True


# --- numbers JSON cannot carry ------------------------------------------------------------------


def test_a_load_so_small_that_a_figure_overflows_is_valid_json(capsys):
    code, out, _ = recommend(capsys, "-f", POOLS, "-f", SEED, "--target-rps", "5e-324", "-o", "json")
    assert code == 0
    got = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert got["costPerMillion"] is None
