"""The worker's built-in reference models, as the operator knows them (without torch).

A built-in model's digest is defined from its name and version, so the operator can key
profiles by it without loading the model. The worker package defines the models and the same
table; a test checks that the two agree.
"""

from __future__ import annotations

import hashlib

# name -> version. Bump a version whenever the worker changes that model's architecture or
# weights: the digest changes with it, so the model is measured again.
BUILTIN_MODEL_VERSIONS: dict[str, int] = {"mlp": 1, "resnet": 1, "transformer": 1, "delay": 1}


def builtin_digest(name: str) -> str:
    """`sha256:<hex>` of `hybridplace.io/builtin/<name>@<version>`."""
    try:
        version = BUILTIN_MODEL_VERSIONS[name]
    except KeyError:
        known = ", ".join(sorted(BUILTIN_MODEL_VERSIONS))
        raise ValueError(f"unknown built-in model {name!r}; known: {known}") from None
    text = f"hybridplace.io/builtin/{name}@{version}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
