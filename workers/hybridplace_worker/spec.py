"""Input specs (``NAME:SHAPE:DTYPE``) and the dtype tables shared by torch, numpy and Triton."""

from __future__ import annotations

import dataclasses
import math
import re

from .errors import Reason, WorkerError

#: dtype name -> Triton config type, Triton wire datatype.
DTYPES: dict[str, tuple[str, str]] = {
    "float32": ("TYPE_FP32", "FP32"),
    "float16": ("TYPE_FP16", "FP16"),
    "int64": ("TYPE_INT64", "INT64"),
    "int32": ("TYPE_INT32", "INT32"),
    "int8": ("TYPE_INT8", "INT8"),
    "uint8": ("TYPE_UINT8", "UINT8"),
    "bool": ("TYPE_BOOL", "BOOL"),
}

# Elements per sample (2**40, a terabyte of bytes) and per batch (2**62): beyond them torch's
# sizes overflow (an error that is no one's fault but the spec's), long before any memory fits.
MAX_ELEMENTS = 2**40
MAX_BATCH_ELEMENTS = 2**62
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: its name, per-sample shape (no batch dimension) and dtype.

    Synthetic integer inputs are drawn uniformly from ``[0, high)``; the default 2 is safe for any
    embedding table. Floats are standard normal, bools fair coins.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    high: int = 2

    def to_text(self) -> str:
        return f"{self.name}:{'x'.join(str(d) for d in self.shape)}:{self.dtype}"

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``NAME:SHAPE:DTYPE``, e.g. ``input:3x224x224:float32``; an empty SHAPE is a scalar."""
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise WorkerError(
            Reason.INVALID_ARGUMENT,
            f"--input {text!r}: expected NAME:SHAPE:DTYPE, e.g. input:3x224x224:float32",
        )
    name, shape_text, dtype = parts
    if not _NAME.match(name):
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--input {text!r}: {name!r} is not a valid input name")
    if dtype not in DTYPES:
        raise WorkerError(
            Reason.INVALID_ARGUMENT,
            f"--input {text!r}: dtype {dtype!r} is not one of {', '.join(DTYPES)}",
        )
    shape: tuple[int, ...] = ()
    if shape_text:
        try:
            shape = tuple(int(d) for d in shape_text.lower().split("x"))
        except ValueError:
            shape = (-1,)
        if any(d <= 0 for d in shape):
            raise WorkerError(
                Reason.INVALID_ARGUMENT,
                f"--input {text!r}: shape {shape_text!r} must be positive integers joined by 'x' "
                "(per sample, without the batch dimension)",
            )
        if math.prod(shape) > MAX_ELEMENTS:
            raise WorkerError(
                Reason.INVALID_ARGUMENT,
                f"--input {text!r}: shape {shape_text!r} has {math.prod(shape)} elements per sample, "
                f"more than {MAX_ELEMENTS}",
            )
    return InputSpec(name, shape, dtype)


def parse_input_specs(texts: list[str] | str | None) -> tuple[InputSpec, ...]:
    """Parse several specs, given as a list and/or comma-separated (``a:4:float32,b:8:int64``)."""
    if not texts:
        return ()
    if isinstance(texts, str):
        texts = [texts]
    items = [t for text in texts for t in text.split(",") if t.strip()]
    specs = tuple(parse_input_spec(t) for t in items)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--input names must be unique, got {names}")
    return specs


def check_batch_fits(specs: tuple[InputSpec, ...], batch_sizes: list[int]) -> None:
    """InvalidArgument when the largest batch of an input has more elements than torch can count."""
    for spec in specs:
        total = math.prod(spec.shape) * max(batch_sizes, default=1)
        if total > MAX_BATCH_ELEMENTS:
            raise WorkerError(
                Reason.INVALID_ARGUMENT,
                f"--input {spec.to_text()}: a batch of {max(batch_sizes)} has {total} elements, more than "
                f"{MAX_BATCH_ELEMENTS}; lower the shape or --batch-sizes",
            )
