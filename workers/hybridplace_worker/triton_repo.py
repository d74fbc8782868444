"""The Triton model repository generator: one function, used by ``bench --engine triton`` and by
``serve`` alike, so what was measured is what is served.

Layout written under ``root``::

    <root>/<model_name>/config.pbtxt      max_batch_size, dynamic_batching, instance_group
    <root>/<model_name>/1/model.py        hybridplace_worker/triton_model.py (python backend)
    <root>/<model_name>/1/model.pt[2]     the TorchScript (or torch.export) artifact
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from .errors import Reason, WorkerError
from .spec import DTYPES

INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
_MODEL_PY = Path(__file__).with_name("triton_model.py")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")  # Triton's rule for a model (directory) name


def check_model_name(name: str) -> str:
    """``name`` if Triton accepts it as a model name (and it is one directory name); ValueError
    otherwise. The name becomes a directory under the repository root: it must not be able to
    name anything outside it (an absolute path, ``..``, a ``/``)."""
    if not isinstance(name, str) or not _MODEL_NAME.match(name) or name in (".", ".."):
        raise ValueError(
            f"{name!r} is not a Triton model name: use letters, digits, '_', '.' and '-' (not '.' or '..')"
        )
    return name


@dataclasses.dataclass(frozen=True)
class TensorConfig:
    """One input or output in config.pbtxt: name, per-sample shape, dtype name (``float32``)."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """How Triton batches and places the model (what the operator's decision sets).

    ``max_queue_delay_us`` is how long Triton may hold a request to form a larger batch;
    ``threads`` is torch's intra-op threads per instance (0: torch's default).
    ``dynamic_batching`` False leaves the block out: every request runs alone, as sent (the
    perf_analyzer comparison uses it, so client timing cannot change the server's batches).
    """

    max_batch_size: int = 8
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    instance_kind: str = "cpu"
    instances: int = 1
    threads: int = 0
    dynamic_batching: bool = True

    def validate(self) -> None:
        def bad(msg: str) -> WorkerError:
            return WorkerError(Reason.INVALID_ARGUMENT, msg)

        if self.max_batch_size < 1:
            raise bad(f"--max-batch-size {self.max_batch_size} must be >= 1")
        for b in self.preferred_batch_sizes:
            if not 1 <= b <= self.max_batch_size:
                raise bad(f"--preferred-batch-size {b} must be between 1 and --max-batch-size {self.max_batch_size}")
        if self.max_queue_delay_us < 0:
            raise bad(f"--max-queue-delay-ms must be >= 0, got {self.max_queue_delay_us / 1000}")
        if self.instance_kind not in INSTANCE_KINDS:
            raise bad(f"--instance-kind {self.instance_kind!r} is not one of {', '.join(INSTANCE_KINDS)}")
        if self.instances < 1:
            raise bad(f"--instances {self.instances} must be >= 1")
        if self.threads < 0:
            raise bad(f"--threads {self.threads} must be >= 0")


def _dims(shape: Sequence[int]) -> str:
    return "[ " + ", ".join(str(d) for d in shape) + " ]"


def _tensor_block(t: TensorConfig) -> str:
    if t.dtype not in DTYPES:
        raise WorkerError(Reason.INPUT_MISMATCH, f"tensor {t.name}: dtype {t.dtype} is not servable by Triton")
    if t.shape:
        return f'  {{ name: "{t.name}" data_type: {DTYPES[t.dtype][0]} dims: {_dims(t.shape)} }}'
    # A per-sample scalar: Triton needs at least one dimension; reshape drops it again.
    kind = DTYPES[t.dtype][0]
    return f'  {{ name: "{t.name}" data_type: {kind} dims: [ 1 ] reshape: {{ shape: [ ] }} }}'


def render_config_pbtxt(
    model_name: str,
    inputs: Sequence[TensorConfig],
    outputs: Sequence[TensorConfig],
    serving: ServingConfig,
    *,
    artifact_name: str,
    artifact_format: str,
) -> str:
    """config.pbtxt text for the python backend model (pure; tested on its own)."""
    serving.validate()
    batching = []
    if serving.preferred_batch_sizes:
        batching.append(f"  preferred_batch_size: {_dims(sorted(set(serving.preferred_batch_sizes)))}")
    batching.append(f"  max_queue_delay_microseconds: {serving.max_queue_delay_us}")
    params = {
        "hp_artifact": artifact_name,
        "hp_format": artifact_format,
        "hp_threads": str(serving.threads),
    }
    lines = [
        f'name: "{model_name}"',
        'backend: "python"',
        f"max_batch_size: {serving.max_batch_size}",
        "input [",
        ",\n".join(_tensor_block(t) for t in inputs),
        "]",
        "output [",
        ",\n".join(_tensor_block(t) for t in outputs),
        "]",
        *(["dynamic_batching {", *batching, "}"] if serving.dynamic_batching else []),
        "instance_group [",
        f"  {{ count: {serving.instances} kind: {INSTANCE_KINDS[serving.instance_kind]} }}",
        "]",
        *(f'parameters: {{ key: "{k}" value: {{ string_value: "{v}" }} }}' for k, v in params.items()),
    ]
    return "\n".join(lines) + "\n"


def write_model_repository(
    root: Path,
    *,
    model_name: str,
    artifact: Path,
    artifact_format: str,
    inputs: Sequence[TensorConfig],
    outputs: Sequence[TensorConfig],
    serving: ServingConfig,
) -> Path:
    """Write (or replace) the repository for one model; returns the model's directory.

    ``model_name`` must be a Triton model name (:func:`check_model_name`; InvalidArgument
    otherwise): what is replaced is ``root/model_name`` and never anything outside ``root``."""
    try:
        check_model_name(model_name)
    except ValueError as exc:
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--model-name {exc}") from None
    root = Path(root)
    model_dir = root / model_name
    version_dir = model_dir / "1"
    if model_dir.is_symlink():
        model_dir.unlink()  # the link itself, inside root; never what it points to
    elif model_dir.exists():  # one directory name (checked above): inside root
        shutil.rmtree(model_dir)
    version_dir.mkdir(parents=True)
    artifact_name = {"torch-export": "model.pt2", "delay": "model.json"}.get(artifact_format, "model.pt")
    try:
        os.link(artifact, version_dir / artifact_name)
    except OSError:
        shutil.copyfile(artifact, version_dir / artifact_name)
    shutil.copyfile(_MODEL_PY, version_dir / "model.py")
    text = render_config_pbtxt(
        model_name,
        inputs,
        outputs,
        serving,
        artifact_name=artifact_name,
        artifact_format=artifact_format,
    )
    (model_dir / "config.pbtxt").write_text(text)
    return model_dir
