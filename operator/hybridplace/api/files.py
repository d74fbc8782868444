"""Read API objects from YAML files and folders (multi-document), naming the file on errors.

Files may be hostile (GitOps pipelines run `hybridplace recommend` on pull requests), so reading
is bounded: file size, nesting depth, YAML alias expansion and the length of anything echoed back
in a message. Each limit is far above what a hand-written manifest needs, and each turns into a
FileProblem (one line), never a traceback, a hang or gigabytes of memory.
"""

from __future__ import annotations

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

from .models import Model
from .validate import FieldError, InvalidObject, parse_object

YAML_SUFFIXES = (".yaml", ".yml", ".json")

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


if _CParser is not None:  # libyaml scans and parses about 10 times faster than pure Python

    class _BoundedLoader(_Limits, _CParser, SafeConstructor, Resolver):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            _Limits.__init__(self)

else:  # pragma: no cover - PyYAML built without libyaml

    class _BoundedLoader(_Limits, Reader, Scanner, Parser, SafeConstructor, Resolver):  # type: ignore[no-redef]
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
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileProblem(f"{path}: no such file or folder")
    return found


def _documents(path: Path) -> list[Any]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise FileProblem(f"{path}: {size} bytes; at most {MAX_FILE_BYTES} are read (split it into "
                              "several files)")
        with path.open("rb") as stream:
            text = stream.read(MAX_FILE_BYTES + 1).decode()
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblem(cut(f"{path}: cannot read: {err}")) from None
    if len(text) > MAX_FILE_BYTES:  # grew while read
        raise FileProblem(f"{path}: more than {MAX_FILE_BYTES} bytes")
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
        raise FileProblem(cut(f"{path}{line}: not valid YAML: {problem}")) from None
    except (ValueError, TypeError, RecursionError) as err:  # a value PyYAML cannot build (an int of
        # 10,000 digits, an unhashable key); the nesting limit keeps RecursionError away, belt and braces
        raise FileProblem(cut(f"{path}: not valid YAML: {type(err).__name__}: {err}")) from None
    finally:
        loader.dispose()
    if len(docs) > MAX_DOCUMENTS:
        raise FileProblem(f"{path}: more than {MAX_DOCUMENTS} documents")
    return docs


def load_objects(paths: Iterable[str | Path]) -> list[Loaded]:
    """Every API object in the files and folders, validated; raises FileProblem on the first bad
    file, listing every bad field of it."""
    loaded: list[Loaded] = []
    for path in _files(paths):
        docs = _documents(path)
        for index, doc in enumerate(docs, start=1):
            source = f"{path}#{index}" if len(docs) > 1 else str(path)
            if isinstance(doc, dict) and str(doc.get("kind")).endswith("List") and "items" in doc:
                items = doc.get("items") or []
                if not isinstance(items, list):
                    raise FileProblem(cut(f"{source}: items: must be a list of objects, not "
                                          f"{type(items).__name__}"))
            else:
                items = [doc]
            for item in items:
                try:
                    loaded.append(Loaded(source, parse_object(item)))
                except InvalidObject as err:
                    raise FileProblem("\n".join(cut(f"{source}: {e}") for e in err.errors[:20])) from None
    return loaded


__all__ = ["FieldError", "FileProblem", "Loaded", "load_objects"]
