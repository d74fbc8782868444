"""Models: the built-in reference models, loading TorchScript / torch.export files from a path or
an http(s) URL with a sha256 check, synthetic inputs from the input spec, and the checks that
turn a model that does not fit its inputs into ``InputMismatch`` instead of a stack trace.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .catalog import (
    BUILTIN_INPUTS,
    BUILTIN_PREFIX,
    BUILTIN_VERSIONS,
    DELAY_BASE_MS,
    DELAY_PER_ITEM_MS,
    DELAY_SCALE_ENV,
    builtin_digest,
)
from .errors import Reason, WorkerError
from .spec import InputSpec

FORMATS = ("torchscript", "torch-export")
BUILTIN_SEED = 20261123  # fixed: a builtin's weights are part of its versioned identity
_TORCH_DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in _TORCH_DTYPES.items()}


# ---------------------------------------------------------------------------------------------
# Built-in reference models: small, so they bench in seconds on 2 CPU cores.


class ReferenceMLP(nn.Module):
    """256 -> 512 -> 512 -> 10, ReLU: a tabular or embedding classifier."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + self.shortcut(x))


class ReferenceResNet(nn.Module):
    """A small ResNet (3 stages of basic blocks, 16/32/64 channels): 3x32x32 images, 10 classes."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layers = nn.Sequential(_BasicBlock(16, 16, 1), _BasicBlock(16, 32, 2), _BasicBlock(32, 64, 2))
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layers(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


class _EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).unbind(2)
        attn = nn.functional.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + self.proj(attn.transpose(1, 2).reshape(b, t, d))
        return x + self.ff(self.norm2(x))


class ReferenceTransformer(nn.Module):
    """A small pre-norm transformer encoder: 32 tokens (vocabulary 1000), 2 layers, width 128,
    4 heads, mean-pooled into 2 classes (a sentiment classifier's shape)."""

    def __init__(self, vocab: int = 1000, seq: int = 32, dim: int = 128, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, seq, dim) * 0.02)
        self.layers = nn.ModuleList([_EncoderLayer(dim, 4, 4 * dim) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids) + self.pos[:, : input_ids.shape[1]]
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x).mean(dim=1))


def delay_scale() -> float:
    """HP_DELAY_SCALE as a positive number (1 when unset); an InvalidArgument error otherwise."""
    raw = os.environ.get(DELAY_SCALE_ENV, "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        value = -1.0
    if not 0 < value <= 1000:
        raise WorkerError(Reason.INVALID_ARGUMENT, f"{DELAY_SCALE_ENV}={raw!r}: expected a number in (0, 1000]")
    return value


class FixedServiceTime(nn.Module):
    """builtin:delay: a batch takes DELAY_BASE_MS + DELAY_PER_ITEM_MS per item (times
    HP_DELAY_SCALE), spent sleeping; the output is each row's sum. Almost no CPU, so a 2-core
    machine can show real queueing, batching and the need for more replicas."""

    def __init__(self):
        super().__init__()
        self.scale = delay_scale()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep((DELAY_BASE_MS + DELAY_PER_ITEM_MS * x.shape[0]) * self.scale / 1000.0)
        return x.sum(dim=1, keepdim=True)


_BUILTIN_CLASSES = {
    "mlp": ReferenceMLP,
    "resnet": ReferenceResNet,
    "transformer": ReferenceTransformer,
    "delay": FixedServiceTime,
}
assert set(_BUILTIN_CLASSES) == set(BUILTIN_VERSIONS), "catalog and model classes disagree"


def build_builtin(name: str) -> nn.Module:
    """The built-in model ``name`` with its deterministic weights, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BUILTIN_SEED)
        module = _BUILTIN_CLASSES[name]()
    return module.eval()


# ---------------------------------------------------------------------------------------------
# Loading


@dataclasses.dataclass
class LoadedModel:
    """A model ready to run: the module, what it is, and its inputs."""

    module: nn.Module
    name: str  # builtin:<name> or the URI as given
    digest: str  # sha256:<hex>
    format: str  # torchscript | torch-export
    inputs: tuple[InputSpec, ...]
    path: Path | None = None  # the file it was loaded from (None for builtins)

    @property
    def is_builtin(self) -> bool:
        return self.name.startswith(BUILTIN_PREFIX)


def load_model(
    uri: str,
    *,
    digest: str | None,
    format: str,
    inputs: Sequence[InputSpec],
    deadline: float | None = None,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Resolve ``uri`` (``builtin:NAME``, a path, ``file://``, ``http(s)://``) into a LoadedModel.

    ``deadline`` is a ``time.monotonic()`` value bounding the download.
    """
    if format not in FORMATS:
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--format {format!r} is not one of {', '.join(FORMATS)}")
    if digest is not None:
        _check_digest_syntax(digest)
    if uri.startswith(BUILTIN_PREFIX):
        return _load_builtin(uri, digest, inputs)
    if not inputs:
        raise WorkerError(
            Reason.INVALID_ARGUMENT,
            f"--model {uri}: a model file needs its input spec: --input NAME:SHAPE:DTYPE (per sample)",
        )
    path = fetch_model(uri, deadline=deadline, cache_dir=cache_dir)
    actual = "sha256:" + sha256_file(path)
    if digest is not None and actual != digest.lower():
        raise WorkerError(
            Reason.DIGEST_MISMATCH,
            f"--model {uri}: content has digest {actual}, but --digest says {digest}; "
            "the model changed or the digest is wrong",
        )
    module = _load_file(path, format, uri)
    return LoadedModel(module, uri, actual, format, tuple(inputs), path)


def _check_digest_syntax(digest: str) -> None:
    hexpart = digest[len("sha256:") :] if digest.startswith("sha256:") else ""
    if len(hexpart) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexpart):
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--digest {digest!r}: expected sha256:<64 hex digits>")


def _load_builtin(uri: str, digest: str | None, inputs: Sequence[InputSpec]) -> LoadedModel:
    name = uri[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN_VERSIONS:
        raise WorkerError(
            Reason.MODEL_NOT_FOUND,
            f"--model {uri}: no such built-in model; built-ins are "
            + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_VERSIONS),
        )
    expected = builtin_digest(name)
    if digest is not None and digest.lower() != expected:
        raise WorkerError(
            Reason.DIGEST_MISMATCH,
            f"--model {uri}: this worker's {name}@{BUILTIN_VERSIONS[name]} has digest {expected}, "
            f"but --digest says {digest}; "
            "the operator and the worker image disagree on the version",
        )
    own = BUILTIN_INPUTS[name]
    if inputs and [s.to_text() for s in inputs] != [s.to_text() for s in own]:
        raise WorkerError(
            Reason.INPUT_MISMATCH,
            f"--model {uri} takes {', '.join(s.to_text() for s in own)}, "
            f"not {', '.join(s.to_text() for s in inputs)}; leave --input out for built-ins",
        )
    return LoadedModel(build_builtin(name), uri, expected, "torchscript", own)


# A download is refused beyond this many bytes (HP_MAX_MODEL_BYTES overrides): the pod's /tmp
# is an emptyDir of 2 GiB, and a hostile URL must not fill a node's disk or run for ever.
DEFAULT_MAX_MODEL_BYTES = 2 * 1024**3


def max_model_bytes() -> int:
    raw = os.environ.get("HP_MAX_MODEL_BYTES")
    try:
        return int(raw) if raw else DEFAULT_MAX_MODEL_BYTES
    except ValueError:
        raise WorkerError(Reason.INVALID_ARGUMENT, f"HP_MAX_MODEL_BYTES={raw!r} is not a number of bytes") from None


def fetch_model(uri: str, *, deadline: float | None = None, cache_dir: Path | None = None) -> Path:
    """A local path for ``uri``: the file itself, or a download of at most ``max_model_bytes()``
    into ``cache_dir`` (else into a new temporary folder, which the caller then owns). A failed
    download leaves nothing behind."""
    try:
        parsed = urllib.parse.urlparse(uri)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket
        raise WorkerError(Reason.INVALID_ARGUMENT, f"--model {uri!r} is not a valid URL: {exc}") from None
    if parsed.scheme in ("", "file"):
        path = Path(urllib.request.url2pathname(parsed.path) if parsed.scheme == "file" else uri)
        if not path.is_file():
            raise WorkerError(Reason.MODEL_NOT_FOUND, f"--model {uri}: no such file {path}")
        return path
    if parsed.scheme not in ("http", "https"):
        raise WorkerError(
            Reason.INVALID_ARGUMENT,
            f"--model {uri}: scheme {parsed.scheme!r} is not builtin:, file, http or https",
        )
    timeout = 60.0 if deadline is None else max(1.0, deadline - time.monotonic())
    limit = max_model_bytes()
    made_dir = cache_dir is None
    target_dir = Path(tempfile.mkdtemp(prefix="hp-model-") if made_dir else cache_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / (Path(parsed.path).name or "model")
    try:
        _download(uri, target, timeout, limit)
    except BaseException:
        # Nothing of a failed download stays behind: the partial file, and the folder if made here.
        target.unlink(missing_ok=True)
        if made_dir:
            shutil.rmtree(target_dir, ignore_errors=True)
        raise
    return target


def _download(uri: str, target: Path, timeout: float, limit: int) -> None:
    copied = 0
    try:
        with urllib.request.urlopen(uri, timeout=timeout) as resp, open(target, "wb") as out:
            announced = resp.headers.get("Content-Length")
            expected = int(announced) if announced and announced.isdigit() else None
            if expected is not None and expected > limit:
                raise _TooLarge(expected)
            while chunk := resp.read(1 << 20):
                copied += len(chunk)
                if copied > limit:
                    raise _TooLarge(copied)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _WriteFailed(exc) from exc
            # read() ends quietly when the connection closes early: the length tells.
            if expected is not None and copied < expected:
                raise _Truncated(copied, expected)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as exc:
                raise _WriteFailed(exc) from exc
    except _TooLarge as exc:
        raise WorkerError(
            Reason.MODEL_NOT_FOUND,
            f"--model {uri}: larger than {limit} bytes (at least {exc.args[0]}); HP_MAX_MODEL_BYTES sets the limit",
        ) from None
    except _Truncated as exc:
        raise WorkerError(
            Reason.MODEL_NOT_FOUND, f"--model {uri}: truncated download (got {exc.args[0]} of {exc.args[1]} bytes)"
        ) from None
    except _WriteFailed as exc:
        raise _write_error(uri, target, exc.args[0]) from exc.args[0]
    except urllib.error.HTTPError as exc:
        raise WorkerError(Reason.MODEL_NOT_FOUND, f"--model {uri}: HTTP {exc.code} {exc.reason}") from exc
    except http.client.IncompleteRead as exc:  # a chunked body cut short
        raise WorkerError(
            Reason.MODEL_NOT_FOUND,
            f"--model {uri}: truncated download (got "
            f"{copied + len(exc.partial)} bytes, then the chunked body broke off)",
        ) from exc
    except http.client.HTTPException as exc:  # a bad status line, a malformed chunk, ...
        raise WorkerError(
            Reason.MODEL_NOT_FOUND, f"--model {uri}: bad HTTP response: {type(exc).__name__}: {exc}"[:600]
        ) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:  # opening the file
            raise _write_error(uri, target, exc) from exc
        raise WorkerError(Reason.MODEL_NOT_FOUND, f"--model {uri}: unreachable: {reason}") from exc


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _write_error(uri: str, target: Path, exc: OSError) -> WorkerError:
    if exc.errno in _NO_SPACE:
        return WorkerError(Reason.MODEL_NOT_FOUND, f"--model {uri}: no space left in {target.parent} ({exc.strerror})")
    return WorkerError(Reason.MODEL_NOT_FOUND, f"--model {uri}: cannot write {target}: {exc}")


class _TooLarge(Exception):
    pass


class _Truncated(Exception):
    pass


class _WriteFailed(Exception):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_file(path: Path, format: str, uri: str) -> nn.Module:
    try:
        if format == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                module = torch.jit.load(str(path), map_location="cpu")
        else:
            module = torch.export.load(str(path)).module()
    except Exception as exc:  # torch raises many types for a file that is not a model
        raise WorkerError(
            Reason.MODEL_NOT_FOUND,
            f"--model {uri}: not a loadable {format} model "
            f"({type(exc).__name__}: {error_summary(exc)}); "
            "check --format",
        ) from exc
    if format == "torchscript":
        module = module.eval()
    return module  # an exported program's module is already in inference form (no .eval())


def module_on(model: LoadedModel, device: str) -> nn.Module:
    """The model's module on ``device`` (``cpu`` or ``cuda``).

    An exported program is moved with ``torch.export.passes.move_to_device_pass`` (its module
    does not support ``.to()`` reliably); everything else with ``.to()``.
    """
    if device == "cpu":
        return model.module
    if model.format == "torch-export" and model.path is not None:
        program = torch.export.load(str(model.path))
        return torch.export.passes.move_to_device_pass(program, device).module()
    return model.module.to(torch.device(device))


# ---------------------------------------------------------------------------------------------
# Inputs, outputs and checks


def torch_dtype(name: str) -> torch.dtype:
    return _TORCH_DTYPES[name]


def synthetic_inputs(
    inputs: Sequence[InputSpec], batch: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Random inputs of batch size ``batch`` in host memory; OutOfMemory if they do not fit."""
    gen = generator or torch.Generator().manual_seed(0)
    tensors = []
    for spec in inputs:
        shape = (batch, *spec.shape)
        dtype = _TORCH_DTYPES[spec.dtype]
        try:
            if dtype.is_floating_point:
                t = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype)
            elif dtype == torch.bool:
                t = torch.randint(0, 2, shape, generator=gen).bool()
            else:
                t = torch.randint(0, spec.high, shape, generator=gen, dtype=dtype)
        except (RuntimeError, MemoryError) as exc:
            if is_out_of_memory(exc):
                raise WorkerError(
                    Reason.OUT_OF_MEMORY,
                    f"batch size {batch}: inputs {spec.to_text()} do not fit in host memory ({error_summary(exc)})",
                ) from exc
            raise
        tensors.append(t)
    return tensors


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text or "cannot allocate memory" in text


def error_summary(exc: BaseException, limit: int = 300) -> str:
    """One line about ``exc`` (TorchScript puts its traceback first and the cause last)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[-1] if len(lines) > 1 and "TorchScript" in lines[0] else lines[0]
    return line[:limit]


def flatten_outputs(out: object) -> list[torch.Tensor]:
    """A model's outputs as a list of tensors (a tensor, or a tuple/list/dict of them)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, list | tuple):
        return [t for item in out for t in flatten_outputs(item)]
    if isinstance(out, dict):
        return [t for key in sorted(out) for t in flatten_outputs(out[key])]
    raise TypeError(f"model output of type {type(out).__name__} is not a tensor")


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: tuple[int, ...]  # per sample
    dtype: str


def check_model_inputs(model: LoadedModel, batches: Sequence[int] = (1, 2)) -> list[OutputSpec]:
    """Run the model on synthetic inputs; InputMismatch if it rejects them or ignores the batch.

    Returns the per-sample output specs (names ``output`` or ``output__<i>``).
    """
    specs: list[OutputSpec] | None = None
    with torch.inference_mode():
        for batch in batches:
            xs = synthetic_inputs(model.inputs, batch)
            try:
                outs = flatten_outputs(model.module(*xs))
            except WorkerError:
                raise
            except Exception as exc:
                if is_out_of_memory(exc):
                    raise WorkerError(Reason.OUT_OF_MEMORY, f"batch size {batch}: {error_summary(exc)}") from exc
                raise WorkerError(
                    Reason.INPUT_MISMATCH,
                    f"--model {model.name} rejects inputs "
                    f"{', '.join(s.to_text() for s in model.inputs)} at batch size {batch}: "
                    f"{error_summary(exc)}",
                ) from exc
            bad = [tuple(o.shape) for o in outs if o.dim() == 0 or o.shape[0] != batch]
            if bad:
                raise WorkerError(
                    Reason.INPUT_MISMATCH,
                    f"--model {model.name}: outputs {bad} at batch size {batch} do not have "
                    "the batch "
                    "as their first dimension; the worker batches along dimension 0",
                )
            current = [
                OutputSpec(
                    "output" if len(outs) == 1 else f"output__{i}",
                    tuple(o.shape[1:]),
                    _DTYPE_NAMES.get(o.dtype, str(o.dtype).removeprefix("torch.")),
                )
                for i, o in enumerate(outs)
            ]
            # Any dtype is fine for the torch engine; the triton engine and serve check theirs
            # (engine_triton.require_servable), naming the output and its dtype.
            specs = current
    assert specs is not None
    return specs


def serving_artifact(model: LoadedModel, directory: Path) -> tuple[Path, str]:
    """The file the Triton python backend loads: (path, format).

    A model file is used as it is (hard-linked or copied); a builtin is traced to TorchScript,
    except builtin:delay, which cannot be traced (a trace drops the sleep): it is a small JSON
    file of its service time, format ``delay``, that the python backend model plays itself.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if model.name == BUILTIN_PREFIX + "delay":
        target = directory / "model.json"
        target.write_text(json.dumps({"baseMs": DELAY_BASE_MS, "perItemMs": DELAY_PER_ITEM_MS}))
        return target, "delay"
    if model.path is not None:
        target = directory / ("model.pt2" if model.format == "torch-export" else "model.pt")
        if target.exists():
            target.unlink()
        try:
            os.link(model.path, target)
        except OSError:
            shutil.copyfile(model.path, target)
        return target, model.format
    target = directory / "model.pt"
    examples = tuple(synthetic_inputs(model.inputs, 2))
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, but it is what Triton's python
        # backend (and older serving images) load without extra dependencies.
        warnings.simplefilter("ignore", FutureWarning)
        traced = torch.jit.trace(model.module, examples, check_trace=False)
        torch.jit.save(traced, str(target))
    return target, "torchscript"
