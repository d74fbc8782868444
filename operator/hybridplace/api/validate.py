"""Parse and validate API objects: structure (pydantic), then the CEL rules (rules.py).

Every problem becomes a `FieldError` naming the object and the field, with a message a user can
act on; callers show all of them at once rather than the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .models import API_VERSION, KINDS, Model
from .rules import rule_violations


@dataclass(frozen=True)
class FieldError:
    kind: str
    name: str
    path: str
    message: str
    namespace: str | None = None

    @property
    def object_ref(self) -> str:
        name = _short(self.name or "<unnamed>", 253)
        kind = _short(self.kind, 64)
        return f"{kind} {_short(str(self.namespace), 63)}/{name}" if self.namespace else f"{kind} {name}"

    def __str__(self) -> str:
        """One line, bounded: a hostile file's values are never echoed whole."""
        return f"{self.object_ref}: {_short(self.path, 256)}: {_short(self.message, 1024)}"


def _short(text: str, limit: int) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class InvalidObject(ValueError):
    """An object the API server would refuse; `errors` lists every reason."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


def _loc_to_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith("function-"):  # pydantic's name for an AfterValidator step
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field (not in the schema)"
    if error["type"] == "missing":
        return "required value"
    message = error["msg"].removeprefix("Value error, ")
    # Say it the way a user reads a field: "must be ...", as the API server does.
    for theirs, ours in _PHRASES:
        message = message.replace(theirs, ours)
    return message


_PHRASES = (
    ("Input should be", "must be"),
    ("String should match pattern", "must match the pattern"),
    ("String should have", "must have"),
    ("List should have", "must have"),
    ("Dictionary should have", "must have"),
    (" after validation", ""),
)


def _dedupe_union(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """pydantic reports each branch of `int | str` apart; keep one error per field."""
    seen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for err in errors:
        loc = tuple(p for p in err["loc"] if p not in ("int", "str", "float", "bool"))
        loc = tuple(p for p in loc if not str(p).startswith(("function-", "constrained-")))
        if loc not in seen or err["type"] == "value_error":
            seen[loc] = {**err, "loc": loc}
    return list(seen.values())


def parse_object(obj: Any, old: dict[str, Any] | None = None, *, stored: bool = False) -> Model:
    """The typed, defaulted object; raises InvalidObject naming every bad field.

    `old` is the stored object when this is an update (for the immutability rules); `stored`:
    `obj` was read from the API server, which admitted it, perhaps before a rule was added
    (admission-only rules are then left out: api/rules.py).
    """
    if not isinstance(obj, dict):
        raise InvalidObject([FieldError("<object>", "", "", "expected a mapping (a YAML object)")])
    kind = obj.get("kind")
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    name, namespace = str(meta.get("name") or ""), meta.get("namespace")
    if not isinstance(kind, str) or kind not in KINDS:
        known = ", ".join(KINDS)
        return _raise(str(kind), name, namespace, "kind", f"unknown kind {kind!r}; known: {known}")
    if obj.get("apiVersion") != API_VERSION:
        return _raise(
            kind, name, namespace, "apiVersion",
            f"unsupported apiVersion {obj.get('apiVersion')!r}; expected {API_VERSION}",
        )
    try:
        model = KINDS[kind].model_validate(obj)
    except ValidationError as err:
        errors = [
            FieldError(kind, name, _loc_to_path(e["loc"]), _message(e), namespace)
            for e in _dedupe_union(err.errors())
        ]
        raise InvalidObject(errors) from None
    violations = rule_violations(kind, model.to_dict(), old, stored=stored)
    if violations:
        raise InvalidObject([FieldError(kind, name, p, m, namespace) for p, m in violations])
    return model


def _raise(kind: str, name: str, namespace: str | None, path: str, message: str) -> Model:
    raise InvalidObject([FieldError(kind, name, path, message, namespace)])
