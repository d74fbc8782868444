"""The built-in reference models: names, versions, digests and input specs (no torch import).

The operator cannot import the worker (nor torch), so it computes the same digest from the name
and version alone; this table and :func:`builtin_digest` are the contract a test checks on both
sides. Bump a version whenever a builtin's architecture, weights or seed change: a new version
is a new digest, so old profiles are never applied to a different model.
"""

from __future__ import annotations

import hashlib

from .spec import InputSpec

#: Version of each built-in model (an integer, as in the operator's table); part of its digest.
BUILTIN_VERSIONS: dict[str, int] = {
    "mlp": 1,
    "resnet": 1,
    "transformer": 1,
    "delay": 1,
}

#: Per-sample inputs of each built-in model (the batch dimension is added in front).
BUILTIN_INPUTS: dict[str, tuple[InputSpec, ...]] = {
    "mlp": (InputSpec("input", (256,), "float32"),),
    "resnet": (InputSpec("input", (3, 32, 32), "float32"),),
    "transformer": (InputSpec("input_ids", (32,), "int64", high=1000),),
    "delay": (InputSpec("input", (4,), "float32"),),
}

#: builtin:delay's service time per batch: DELAY_BASE_MS + DELAY_PER_ITEM_MS x batch size (ms),
#: spent sleeping, so queueing and batching are real without using the CPU. HP_DELAY_SCALE (a
#: number, default 1) multiplies it where the model runs: a serving pod "slower than its profile".
DELAY_BASE_MS = 20.0
DELAY_PER_ITEM_MS = 1.0
DELAY_SCALE_ENV = "HP_DELAY_SCALE"

BUILTIN_PREFIX = "builtin:"


def builtin_digest(name: str) -> str:
    """``sha256:<hex>`` of ``hybridplace.io/builtin/<name>@<version>`` (the operator's formula)."""
    if name.startswith(BUILTIN_PREFIX):
        name = name[len(BUILTIN_PREFIX) :]
    version = BUILTIN_VERSIONS[name]
    payload = f"hybridplace.io/builtin/{name}@{version}".encode()
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def builtin_digests() -> dict[str, str]:
    """Digest of every built-in model, keyed by name (``mlp``, not ``builtin:mlp``)."""
    return {name: builtin_digest(name) for name in BUILTIN_VERSIONS}
