"""Read API objects from YAML files and folders (multi-document), naming the file on errors."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .models import Model
from .validate import FieldError, InvalidObject, parse_object

YAML_SUFFIXES = (".yaml", ".yml", ".json")


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
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise FileProblem(f"{path}: cannot read: {err}") from None
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        problem = getattr(err, "problem", None) or str(err)
        raise FileProblem(f"{path}{line}: not valid YAML: {problem}") from None


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
            else:
                items = [doc]
            for item in items:
                try:
                    loaded.append(Loaded(source, parse_object(item)))
                except InvalidObject as err:
                    raise FileProblem("\n".join(f"{source}: {e}" for e in err.errors)) from None
    return loaded


__all__ = ["FieldError", "FileProblem", "Loaded", "load_objects"]
