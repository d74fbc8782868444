"""`hybridplace recommend` on hostile files (GitOps pipelines run it on pull-request YAML): every
malformed or hostile file is exit 2 with one line, never a traceback, never above 1 s or 200 MiB.

A hypothesis-driven fuzz test breaks valid objects of each kind in ways that are invalid by
construction; targeted tests cover what the issue found: deep nesting, `items` that is not a
list, a YAML alias bomb, a huge field echoed back, and the size limits."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cases.api_objects import VALID
from hybridplace.api.files import MAX_DEPTH, MAX_FILE_BYTES, MAX_LINE
from hybridplace.cli.main import main
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
POOLS = REPO / "examples" / "hardwarepools.yaml"
SEED = REPO / "examples" / "seed"


def recommend(capsys, path: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(["recommend", "-f", str(POOLS), "-f", str(SEED), "-f", str(path)])
    elapsed = time.monotonic() - started
    out, err = capsys.readouterr()
    assert out == "", f"decided (exit {code}) from:\n{path.read_text()[:3000]}"
    return code, err, elapsed


def assert_refused_in_one_line(code: int, err: str, elapsed: float, limit_s: float = 1.0) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err[:500]
    assert len(err) <= 4 * MAX_LINE + 100
    assert elapsed < limit_s, f"{elapsed:.2f}s"


# -- the fuzz test -----------------------------------------------------------------------------


def _paths(obj, prefix=()):
    """Every path under spec (and metadata.name) of `obj`, with the value there."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield (*prefix, key), value
            yield from _paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield (*prefix, i), value
            yield from _paths(value, (*prefix, i))


def _set(obj, path, value):
    node = obj
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


HOLE = "zzHOLEzz"  # replaced by a hostile text fragment after the object is written out

# Hostile values as JSON text (JSON is YAML): written in, never built as Python objects first.
non_list_fragments = st.one_of(
    st.builds(lambda n: '"' + "x" * n + '"', st.integers(100_000, 5_000_000)),  # huge, or a too big file
    st.builds(lambda d: '{"a": ' * d + "1" + "}" * d, st.integers(MAX_DEPTH, 5000)),  # deep nesting
    st.builds(lambda n: "9" * n, st.integers(5000, 100_000)),  # an int Python will not convert
    # Not ~: a List's `items: null` is an empty list, as kubectl reads it.
    st.sampled_from(['"x"', '{"zz": 1}', "true", "1e999", ".nan", "-.inf", '"\\u0000"']),
)
fragments = st.one_of(
    non_list_fragments,
    st.builds(lambda d: "[" * d + "]" * d, st.integers(MAX_DEPTH, 5000)),
    st.sampled_from(["[]", '[{"a": 1}]']),
)


@st.composite
def malformed(draw, kind: str) -> str:
    """The text of a file holding one object of `kind`, broken in a way the API server refuses."""
    obj = copy.deepcopy(VALID[kind](f"fuzz-{kind.lower()}"))
    obj["metadata"]["namespace"] = "default"
    spec_paths = [("spec", *p) for p, _ in _paths(obj["spec"])]
    value_at = dict(_paths(obj))
    how = draw(
        st.sampled_from(
            ["retype", "unknown-field", "drop-required", "hostile-kind", "items-not-list", "broken-yaml", "bad-name"]
        )
    )
    fragment = '"unused"'
    if how == "retype":  # a scalar where an object or list is, an object where a scalar is
        path = draw(st.sampled_from(spec_paths))
        _set(obj, path, "x" if isinstance(value_at[path], dict | list) else {"unexpected": value_at[path]})
    elif how == "unknown-field":
        parent = draw(st.sampled_from([("spec",), *[p for p in spec_paths if isinstance(value_at[p], dict)]]))
        _set(obj, (*parent, draw(st.from_regex(r"zz[a-z]{1,10}", fullmatch=True))), HOLE)
        fragment = draw(fragments)
    elif how == "drop-required":
        del obj["spec"][draw(st.sampled_from(sorted(obj["spec"])))]
        obj["spec"]["zzUnknown"] = 1  # some spec fields are optional: keep it invalid
    elif how == "hostile-kind":
        obj["kind"] = HOLE
        fragment = draw(fragments)
    elif how == "items-not-list":
        obj = {"apiVersion": "v1", "kind": "List", "items": HOLE}
        fragment = draw(non_list_fragments)
    elif how == "bad-name":
        obj["metadata"]["name"] = draw(st.sampled_from(["Web", "a" * 300, "web.v2" + "x" * 100_000, "", "-a"]))
        obj["spec"]["zzUnknown"] = 1  # a ModelProfile name is not restricted by hybridplace
    else:
        text = yaml.safe_dump(obj)
        cut = draw(st.integers(0, len(text)))
        return text[:cut] + draw(st.sampled_from([": : [", "\t- {", "&a [*a", "!!python/object:os.system x", "{"]))
    text = json.dumps(obj) if draw(st.booleans()) else yaml.safe_dump(obj, width=1 << 30)
    return text.replace(f'"{HOLE}"', fragment).replace(HOLE, fragment)


@pytest.mark.parametrize("kind", sorted(VALID))
@settings(
    max_examples=int(os.environ.get("HP_FUZZ_EXAMPLES", "210")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_malformed_objects_are_one_line_and_exit_2(kind, data, tmp_path, capsys):
    text = data.draw(malformed(kind))
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    assert_refused_in_one_line(*recommend(capsys, path))


# -- what the issue found ----------------------------------------------------------------------

BOMB = """\
apiVersion: hybridplace.io/v1alpha1
kind: HardwarePool
metadata:
  name: bomb
  annotations:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
spec: {}
"""

HOSTILE = {
    "nested-json-2000": ("json", "[" * 2000 + "]" * 2000, "nested deeper than 64"),
    "nested-yaml-5000": ("yaml", "- " * 5000 + "1\n", "nested deeper than 64"),
    "nested-flow-5000": ("yaml", "{a: " * 5000 + "1" + "}" * 5000, "nested deeper than 64"),
    "items-not-a-list": ("yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n", "items: must be a list"),
    "items-a-string": ("yaml", "apiVersion: v1\nkind: List\nitems: abc\n", "items: must be a list"),
    "alias-bomb": ("yaml", BOMB, "or YAML aliases that expand to them"),
    "recursive-alias": ("yaml", "a: &a [*a]\n", "recursive"),
    "huge-kind": ("yaml", f"apiVersion: hybridplace.io/v1alpha1\nkind: {'k' * 1_000_000}\n", "unknown kind"),
    "huge-int": ("yaml", f"a: {'9' * 100_000}\n", "not valid YAML"),
    "python-tag": ("yaml", "!!python/object/apply:os.system ['true']\n", "not valid YAML"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_what_the_issue_found_is_refused_in_one_line(case, tmp_path, capsys):
    suffix, text, expected = HOSTILE[case]
    path = tmp_path / f"hostile.{suffix}"
    path.write_text(text)
    code, err, elapsed = recommend(capsys, path)
    assert_refused_in_one_line(code, err, elapsed)
    assert expected in err


def test_a_file_over_the_size_limit_is_not_read(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_FILE_BYTES)
    code, err, elapsed = recommend(capsys, path)
    assert_refused_in_one_line(code, err, elapsed)
    assert f"at most {MAX_FILE_BYTES} are read" in err


def test_a_huge_field_is_not_echoed_back(tmp_path, capsys):
    obj = VALID["InferenceDeployment"]("echo")
    obj["spec"]["slo"]["percentile"] = "9" * 500_000
    path = tmp_path / "echo.yaml"
    path.write_text(yaml.safe_dump(obj))
    code, err, elapsed = recommend(capsys, path)
    assert_refused_in_one_line(code, err, elapsed)


def _worst_file(tmp_path: Path) -> Path:
    """Just under the size limit: a List of many objects, each with long annotations."""
    obj = VALID["HardwarePool"]("big")
    obj["metadata"]["annotations"] = {f"k{i}": "v" * 1000 for i in range(100)}
    items = [copy.deepcopy(obj) for _ in range(MAX_FILE_BYTES // 110_000)]
    items[-1]["spec"]["zzUnknown"] = 1
    path = tmp_path / "worst.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    assert path.stat().st_size < MAX_FILE_BYTES
    return path


@pytest.mark.parametrize("case", ["alias-bomb", "nested-flow-5000", "huge-kind", "worst"])
def test_memory_and_time_stay_bounded_in_the_installed_command(case, tmp_path):
    if case == "worst":
        path = _worst_file(tmp_path)
    else:
        suffix, text, _ = HOSTILE[case]
        path = tmp_path / f"hostile.{suffix}"
        path.write_text(text)
    rss = tmp_path / "maxrss"
    probe = (
        "import os, resource, sys\nfrom hybridplace.cli.main import main\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "code = main(sys.argv[1:])\n"
        "open(os.environ['RSS_FILE'], 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base))\n"
        "sys.exit(code)\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", probe, "recommend", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RSS_FILE": str(rss)},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    grown_mib = int(rss.read_text()) / 1024  # ru_maxrss is in KiB on Linux
    assert grown_mib < 200, f"{grown_mib:.0f} MiB"
    # 1 s for reading the file; the interpreter's start and imports come on top (about 1-2 s here)
    assert elapsed < 1.0 + _startup_seconds(), f"{elapsed:.2f}s"


_STARTUP: list[float] = []


def _startup_seconds() -> float:
    if not _STARTUP:
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import hybridplace.cli.main"], check=True, timeout=60)
        _STARTUP.append(time.monotonic() - started)
    return _STARTUP[0]
