"""Read API objects from YAML files and folders (multi-document), naming the file on errors.

Files may be hostile (GitOps pipelines run `hybridplace recommend` on pull requests), so reading
is bounded: file size, nesting depth, YAML alias expansion and the length of anything echoed back
in a message. Each limit is far above what a hand-written manifest needs, and each turns into a
FileProblem (one line), never a traceback, a hang or gigabytes of memory.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover
    _CParser = None

from .models import KINDS, Model
from .validate import FieldError, InvalidObject, parse_object

YAML_SUFFIXES = (".yaml", ".yml", ".json")  # matched without regard to case (.YAML, .Yml)
STDIN = "-"  # the path that reads standard input, as with kubectl
STDIN_SOURCE = "<stdin>"  # how standard input is named in messages and sources

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64  # nested mappings and lists; Kubernetes objects need about 15
MAX_NODES = 50_000  # values per file, aliases counted as what they expand to; about 0.5 s to read
MAX_LINE = 2000  # characters of one problem, values echoed in it included
MAX_DOCUMENTS = 1000


class _Limits(Composer):
    """PyYAML's composer with limits on nesting and on alias expansion: a "billion laughs" file
    is refused while it is composed, before anything is built from it."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._sizes: dict[int, int] = {}  # expanded size of each composed node, by id
        self._before = 0  # values in the documents before this one

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", mark)
        alias = self.check_event(yaml.AliasEvent)
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if alias:
            if id(node) not in self._sizes:  # the anchor's node is still being composed
                raise _Refused("an alias refers to a node that contains it (a recursive structure)",
                               node.start_mark)
        else:
            self._sizes[id(node)] = self._expanded(node)
        return node

    def compose_document(self) -> Any:
        self._sizes = {}
        node = super().compose_document()
        self._before += self._sizes.get(id(node), 0)
        return node

    def _expanded(self, node: yaml.Node) -> int:
        if isinstance(node, yaml.ScalarNode):
            size = 1
        elif isinstance(node, yaml.SequenceNode):
            size = 1 + sum(self._sizes.get(id(x), MAX_NODES) for x in node.value)
        else:
            size = 1 + sum(self._sizes.get(id(k), MAX_NODES) + self._sizes.get(id(v), MAX_NODES)
                           for k, v in node.value)
        if self._before + size > MAX_NODES:
            raise _Refused(f"more than {MAX_NODES} values (or YAML aliases that expand to them); "
                           "split the file", node.start_mark)
        return size


class _UniqueKeys(SafeConstructor):
    """SafeConstructor that refuses a mapping with a key given twice, as kubectl does (PyYAML
    keeps the last one silently). Keys a merge (`<<: *anchor`) brings in may be overridden."""

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], Any] = {}  # (tag, text) of each key: where it was
            for key, _ in node.value:  # the mapping's own keys: merges are flattened after this
                if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                    continue
                if (key.tag, key.value) in first:
                    raise _Refused(f"key {cut(key.value, 200)!r} is given twice (first at line "
                                   f"{first[key.tag, key.value].line + 1}); kubectl refuses this too: keep one",
                                   key.start_mark)
                first[key.tag, key.value] = key.start_mark
        return super().construct_mapping(node, deep=deep)


if _CParser is not None:  # libyaml scans and parses about 10 times faster than pure Python

    class _BoundedLoader(_Limits, _CParser, _UniqueKeys, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            _Limits.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _BoundedLoader(_Limits, Reader, Scanner, Parser, _UniqueKeys, Resolver):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            _Limits.__init__(self)


class _Refused(yaml.YAMLError):
    def __init__(self, problem: str, mark: Any):
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


def cut(text: str, limit: int = MAX_LINE) -> str:
    """`text` within `limit` characters, marked when cut: a message never echoes a huge value."""
    return text if len(text) <= limit else text[: limit - 30] + f"... ({len(text)} characters)"


class FileProblem(ValueError):
    """A file that cannot be read as API objects; the message names the file (and object)."""


@dataclass(frozen=True)
class Loaded:
    source: str  # "path" or "path#N" for the N-th document (1-based) of a multi-document file
    obj: Model


def _files(paths: Iterable[str | Path]) -> list[Path]:
    """The files to read, in order, each once: the same file given twice (or a folder and a file
    in it, or two spellings of one path) is read the first time only. `-` is standard input."""
    found: list[Path] = []
    seen: set[Path | str] = set()

    def add(path: Path) -> None:
        key: Path | str = STDIN if str(path) == STDIN else path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for raw in paths:
        path = Path(raw)
        if str(raw) == STDIN:
            add(path)
        elif path.is_dir():
            for p in sorted(path.rglob("*")):
                # Regular files only: a pipe or a device (a link to /dev/stdin) is read when named.
                if p.suffix.lower() in YAML_SUFFIXES and p.is_file():
                    add(p)
        elif path.exists():  # a file, or a pipe, /dev/null, a process substitution: read as a stream
            add(path)
        else:
            raise FileProblem(f"{path}: no such file or folder")
    return found


def _name(path: Path) -> str:
    return STDIN_SOURCE if str(path) == STDIN else str(path)


def _read(path: Path) -> str:
    """The file's text, at most MAX_FILE_BYTES: a regular file's size is checked first; standard
    input, a pipe or a device is read up to one byte past the limit."""
    name = _name(path)
    try:
        if str(path) == STDIN:
            stdin = sys.stdin
            raw = stdin.buffer.read(MAX_FILE_BYTES + 1) if hasattr(stdin, "buffer") \
                else stdin.read(MAX_FILE_BYTES + 1).encode()
        else:
            size = path.stat().st_size
            if path.is_file() and size > MAX_FILE_BYTES:
                raise FileProblem(f"{name}: {size} bytes; at most {MAX_FILE_BYTES} are read (split it into "
                                  "several files)")
            with path.open("rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:  # a stream, or a file that grew while read
            raise FileProblem(f"{name}: more than {MAX_FILE_BYTES} bytes; at most {MAX_FILE_BYTES} are read "
                              "(split it into several files)")
        return raw.decode()
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblem(cut(f"{name}: cannot read: {err}")) from None


def _documents(path: Path) -> list[Any]:
    text = _read(path)
    name = _name(path)
    docs = []
    loader = _BoundedLoader(text)
    try:
        while loader.check_data():
            doc = loader.get_data()
            if doc is not None:
                docs.append(doc)
            if len(docs) > MAX_DOCUMENTS:
                break
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(err, "problem", None) or str(err)
        raise FileProblem(cut(f"{name}{line}: not valid YAML: {problem}")) from None
    except (ValueError, TypeError, RecursionError) as err:  # a value PyYAML cannot build (an int of
        # 10,000 digits, an unhashable key); the nesting limit keeps RecursionError away, belt and braces
        raise FileProblem(cut(f"{name}: not valid YAML: {type(err).__name__}: {err}")) from None
    finally:
        loader.dispose()
    if len(docs) > MAX_DOCUMENTS:
        raise FileProblem(f"{name}: more than {MAX_DOCUMENTS} documents")
    return docs


def _a(value: Any) -> str:
    """What a YAML value is, in words: "a list", "a string", "null"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return {list: "a list", str: "a string", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")


def load_objects(paths: Iterable[str | Path]) -> list[Loaded]:
    """Every API object in the files and folders (`-`: standard input), validated; raises
    FileProblem on the first bad file, listing every bad field of it."""
    loaded: list[Loaded] = []
    for path in _files(paths):
        docs = _documents(path)
        name = _name(path)
        for index, doc in enumerate(docs, start=1):
            source = f"{name}#{index}" if len(docs) > 1 else name
            if not isinstance(doc, dict):  # named by its number even when it is the only one
                raise FileProblem(f"{name}#{index}: expected a Kubernetes object (a mapping), not {_a(doc)}")
            listed = str(doc.get("kind")).endswith("List") and "items" in doc
            if listed:
                items = doc.get("items")
                if items is None:
                    raise FileProblem(f"{source}: items: must be a list of objects, not null (write items: [] "
                                      "for none)")
                if not isinstance(items, list):
                    raise FileProblem(cut(f"{source}: items: must be a list of objects, not "
                                          f"{type(items).__name__}"))
            else:
                items = [doc]
            for position, item in enumerate(items):
                where = f"{source}: items[{position}]" if listed else source
                if not isinstance(item, dict):
                    raise FileProblem(f"{where}: expected a Kubernetes object (a mapping), not {_a(item)}")
                if "kind" not in item:
                    meta = item.get("metadata")
                    named = meta.get("name") if isinstance(meta, dict) else None
                    raise FileProblem(cut(f"{where}: object {named if isinstance(named, str) else '<unnamed>'}: "
                                          f"kind: required value (one of {', '.join(KINDS)})"))
                try:
                    loaded.append(Loaded(source, parse_object(item)))
                except InvalidObject as err:
                    raise FileProblem("\n".join(cut(f"{source}: {e}") for e in err.errors[:20])) from None
    return loaded


__all__ = ["FieldError", "FileProblem", "Loaded", "load_objects"]
