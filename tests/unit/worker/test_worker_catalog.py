"""Built-in digests (the operator computes the same from name and version) and input specs."""

import hashlib

import pytest
from hybridplace_worker.catalog import (
    BUILTIN_INPUTS,
    BUILTIN_VERSIONS,
    builtin_digest,
    builtin_digests,
)
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.spec import DTYPES, InputSpec, parse_input_spec, parse_input_specs
from hypothesis import given
from hypothesis import strategies as st


def test_builtin_digest_is_the_documented_formula():
    for name, version in BUILTIN_VERSIONS.items():
        expected = "sha256:" + hashlib.sha256(f"hybridplace.io/builtin/{name}@{version}".encode()).hexdigest()
        assert builtin_digest(name) == expected == builtin_digest(f"builtin:{name}")
    assert set(builtin_digests()) == {"mlp", "resnet", "transformer", "delay"}
    assert len(set(builtin_digests().values())) == 4


def test_every_builtin_has_inputs():
    assert set(BUILTIN_INPUTS) == set(BUILTIN_VERSIONS)


def test_parse_input_spec():
    assert parse_input_spec("input:3x224x224:float32") == InputSpec("input", (3, 224, 224), "float32")
    assert parse_input_spec("ids:32:int64") == InputSpec("ids", (32,), "int64")
    assert parse_input_spec("flag::bool") == InputSpec("flag", (), "bool")
    assert parse_input_specs(["a:4:float32,b:8:int64"]) == (
        InputSpec("a", (4,), "float32"),
        InputSpec("b", (8,), "int64"),
    )


@pytest.mark.parametrize(
    "text",
    [
        "input",
        "input:3x224:float64",
        "input:3x-1:float32",
        "input:axb:float32",
        "in put:3:float32",
        "a:1:float32:extra",
    ],
)
def test_bad_input_specs_are_invalid_arguments(text):
    with pytest.raises(WorkerError) as info:
        parse_input_spec(text)
    assert info.value.reason == Reason.INVALID_ARGUMENT and text in info.value.message


def test_duplicate_input_names_are_rejected():
    with pytest.raises(WorkerError, match="unique"):
        parse_input_specs("a:1:float32,a:2:float32")


@given(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True),
    st.lists(st.integers(1, 512), max_size=4),
    st.sampled_from(sorted(DTYPES)),
)
def test_spec_text_round_trips(name, shape, dtype):
    spec = InputSpec(name, tuple(shape), dtype)
    assert parse_input_spec(spec.to_text()) == spec


def test_docs_list_the_current_digests():
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "worker.md").read_text()
    for name, version in BUILTIN_VERSIONS.items():
        assert f"| `{name}@{version}` | `{builtin_digest(name)}` |" in docs


def test_the_operator_computes_the_same_digests():
    operator_builtins = pytest.importorskip("hybridplace.api.builtins")
    assert operator_builtins.BUILTIN_MODEL_VERSIONS == BUILTIN_VERSIONS
    for name in BUILTIN_VERSIONS:
        assert operator_builtins.builtin_digest(name) == builtin_digest(name)
