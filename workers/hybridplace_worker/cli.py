"""Command line: ``hybridplace-worker bench|serve``. Every option has an environment variable:
``HP_`` + the option's name in capitals, ``-`` as ``_`` (``--batch-sizes`` -> ``HP_BATCH_SIZES``),
so a Kubernetes Job or Deployment can set them in ``env:``. A command-line value wins.

Nothing heavy is imported here: the watchdog must be running before torch is imported, so that
``--deadline-seconds`` holds even for a slow start.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

from . import __version__
from .errors import Reason, WorkerError
from .result import DEFAULT_TERMINATION_LOG

PROCESS_START = time.monotonic()
MAX_DEADLINE_S = 7 * 24 * 3600.0  # one week: longer is a mistake (and inf would disable the deadline)
MAX_INT32 = 2**31 - 1  # Triton's batch sizes are int32; more threads or requesters than that is a typo


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and exit 2 with no JSON
        raise WorkerError(Reason.INVALID_ARGUMENT, message)


def env_name(option: str) -> str:
    return "HP_" + option.lstrip("-").upper().replace("-", "_")


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in str(text).replace(" ", "").split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not values or any(not 1 <= v <= MAX_INT32 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers up to {MAX_INT32}, e.g. 1,2,4,8")
    return values


def _unique_int_list(text: str) -> list[int]:
    """Batch sizes and concurrency levels: each once (a repeated one would be a duplicate point)."""
    values = _int_list(text)
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"{text!r} repeats {', '.join(map(str, repeated))}; give each value once")
    return values


def _finite_float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _deadline(text: str) -> float:
    value = _positive_float(text)
    if value > MAX_DEADLINE_S:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most {MAX_DEADLINE_S:.0f} (one week)")
    return value


def _int_in(text: str, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} must be between {low} and {high}")
    return value


def _positive_int(text: str) -> int:
    return _int_in(text, 1, MAX_INT32)


def _non_negative_int(text: str) -> int:
    return _int_in(text, 0, MAX_INT32)


def _port(text: str) -> int:
    return _int_in(text, 1, 65535)


def _model_name(text: str) -> str:
    from .triton_repo import check_model_name

    try:
        return check_model_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _percentile(text: str) -> int:
    if str(text).strip() not in ("50", "90", "95", "99"):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of 50, 90, 95, 99")
    return int(text)


def _non_negative_float(text: str) -> float:
    try:
        value = _finite_float(text)
    except argparse.ArgumentTypeError:
        value = -1.0
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _add(
    parser: argparse.ArgumentParser,
    option: str,
    *,
    help: str,
    default=None,
    type: Callable | None = None,
    **kwargs,
) -> None:
    """An option whose default comes from its environment variable, then ``default``."""
    env = env_name(option)
    raw = os.environ.get(env)
    if raw is not None and raw != "":
        value = raw
        if type is not None:
            try:
                value = type(raw)
            except (argparse.ArgumentTypeError, ValueError) as exc:
                raise WorkerError(Reason.INVALID_ARGUMENT, f"{env}={raw!r}: {exc}") from exc
        if "choices" in kwargs and value not in kwargs["choices"]:
            raise WorkerError(
                Reason.INVALID_ARGUMENT,
                f"{env}={raw!r}: expected one of {', '.join(kwargs['choices'])}",
            )
        default = value
        kwargs.pop("required", None)
    shown = "" if default is None else f" (default: {default})"
    parser.add_argument(option, help=f"{help} [env {env}]{shown}", default=default, type=type, **kwargs)


def _model_options(p: argparse.ArgumentParser) -> None:
    _add(
        p,
        "--model",
        required=True,
        help="builtin:mlp | builtin:resnet | builtin:transformer | builtin:delay, a file path, or a file/http(s) URL",
    )
    _add(
        p,
        "--digest",
        help="sha256:<64 hex> of the model file (or of the builtin's name@version); "
        "checked before use, DigestMismatch otherwise",
    )
    _add(
        p,
        "--format",
        default="torchscript",
        choices=["torchscript", "torch-export"],
        help="format of a model file",
    )
    p.add_argument(
        "--input",
        action="append",
        default=None,
        help="NAME:SHAPE:DTYPE per sample, e.g. input:3x224x224:float32; repeat the option "
        "or separate with commas; builtins know their own [env HP_INPUT]",
    )
    _add(
        p,
        "--threads",
        type=_non_negative_int,
        default=0,
        help="torch intra-op threads (per Triton instance for the triton engine); 0 = the CPUs "
        "available to the container, divided by --instances",
    )
    _add(
        p,
        "--deadline-seconds",
        type=_deadline,
        default=600.0,
        help="hard deadline for the whole run (for serve: until tritonserver is started); Timeout after it",
    )
    _add(
        p,
        "--termination-log",
        default=DEFAULT_TERMINATION_LOG,
        help="where the compact result (<= 4096 bytes) or the error goes; skipped when it is "
        f"{DEFAULT_TERMINATION_LOG} and that does not exist",
    )
    _add(
        p,
        "--tritonserver",
        help="tritonserver binary (default: /opt/tritonserver, else the nvidia-pytriton wheel)",
    )
    _add(
        p,
        "--max-batch-size",
        type=_positive_int,
        default=None,
        help="Triton max_batch_size (bench default: the largest --batch-sizes; serve default: 8)",
    )
    _add(
        p,
        "--preferred-batch-size",
        type=_int_list,
        default=None,
        help="Triton dynamic_batching preferred_batch_size, comma-separated",
    )
    _add(
        p,
        "--max-queue-delay-ms",
        type=_non_negative_float,
        default=0.0,
        help="Triton dynamic_batching max_queue_delay (ms) to wait to form a batch",
    )
    _add(
        p,
        "--instance-kind",
        default=None,
        choices=["cpu", "gpu"],
        help="Triton instance_group kind (bench default: from --device; serve default: cpu)",
    )
    _add(p, "--instances", type=_positive_int, default=1, help="Triton instance_group count")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hybridplace-worker",
        description="hybridplace benchmark worker and Triton serving runtime",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    bench = sub.add_parser("bench", help="measure a model; compact result to the termination log")
    _model_options(bench)
    _add(bench, "--device", default="cpu", choices=["cpu", "cuda"], help="where the model runs")
    _add(
        bench,
        "--engine",
        default="torch",
        choices=["torch", "triton"],
        help="torch: in-process; triton: through a local tritonserver and tritonclient",
    )
    _add(
        bench,
        "--batch-sizes",
        type=_unique_int_list,
        default=[1, 2, 4, 8],
        help="batch sizes, comma-separated",
    )
    _add(
        bench,
        "--concurrency",
        type=_unique_int_list,
        default=[1],
        help="concurrent closed-loop requesters, comma-separated",
    )
    _add(
        bench,
        "--duration-seconds",
        type=_positive_float,
        default=3.0,
        help="measured time per point: the --stable-windows windows that are reported",
    )
    _add(
        bench,
        "--warmup-seconds",
        type=_non_negative_float,
        default=0.5,
        help="warm-up per point, discarded",
    )
    _add(
        bench,
        "--stable-windows",
        type=_positive_int,
        default=3,
        help="consecutive windows the stability rule compares",
    )
    _add(
        bench,
        "--max-windows",
        type=_positive_int,
        default=10,
        help="windows at most per point before it is marked unstable",
    )
    _add(
        bench,
        "--stability-threshold",
        type=_positive_float,
        default=0.10,
        help="largest relative range (max-min)/median of window p50 and throughput for a stable point",
    )
    _add(
        bench,
        "--protocol",
        default="http",
        choices=["http", "grpc"],
        help="triton engine: client protocol",
    )
    _add(
        bench,
        "--request-overhead-seconds",
        type=_non_negative_float,
        default=2.0,
        help="triton engine, max batch size > 1: after the points, keep the model busy this long "
        "with single-item requests (2 x max batch size connections) and record the serving time "
        "per request beyond the points' time per item (requestOverheadMs); 0: skip",
    )
    _add(
        bench,
        "--gpu-timer",
        default="sync",
        choices=["sync", "events"],
        help="torch engine on GPU: host clock + stream synchronize, or CUDA events",
    )
    _add(
        bench,
        "--search",
        default="Grid",
        choices=["Grid", "Adaptive"],
        help="Grid: every batch size at every concurrency; Adaptive: only where the placement "
        "decision can be (search.py), the rest recorded as skipped with a reason",
    )
    _add(
        bench,
        "--slo-ms",
        type=_positive_float,
        default=None,
        help="adaptive search: the deployment's SLO in ms (unset: only the throughput knee stops it)",
    )
    _add(
        bench,
        "--slo-percentile",
        type=_percentile,
        default=95,
        help="adaptive search: the SLO's percentile, 50, 90, 95 or 99",
    )
    _add(
        bench,
        "--budget-points",
        type=_positive_int,
        default=None,
        help="measure at most this many points (either search); the rest are skipped as Budget",
    )
    _add(
        bench,
        "--budget-seconds",
        type=_positive_float,
        default=None,
        help="start no new point after this many seconds of measuring (either search)",
    )
    _add(bench, "--output", default="-", help="where the full result goes: a path, or - for stdout")
    _add(
        bench,
        "--server-start-timeout-seconds",
        type=_positive_float,
        default=180.0,
        help="how long tritonserver may take to become ready; ServerStartFailed after it",
    )
    _add(
        bench,
        "--node-name",
        default=None,
        help="the node's name, recorded in the result (set it from spec.nodeName in a pod)",
    )

    serve = sub.add_parser("serve", help="generate the Triton repository and run tritonserver in the foreground")
    _model_options(serve)
    _add(serve, "--http-port", type=_port, default=8000, help="Triton HTTP port")
    _add(serve, "--grpc-port", type=_port, default=8001, help="Triton gRPC port")
    _add(serve, "--metrics-port", type=_port, default=8002, help="Triton Prometheus metrics port")
    _add(serve, "--address", default="0.0.0.0", help="address tritonserver binds to")
    _add(
        serve,
        "--repository-dir",
        default=None,
        help="where the model repository is written (default: a new directory under $TMPDIR)",
    )
    _add(
        serve,
        "--model-name",
        type=_model_name,
        default="model",
        help="the model's name in Triton: letters, digits, '_', '.', '-' (not '.' or '..')",
    )
    serve.add_argument(
        "--dry-run",
        action="store_true",
        default=os.environ.get("HP_DRY_RUN") == "1",
        help="write the repository, print the tritonserver command as JSON, exit [env HP_DRY_RUN=1]",
    )
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    if args.input is None and os.environ.get("HP_INPUT"):
        args.input = [os.environ["HP_INPUT"]]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0, or the reason's code; see errors.EXIT_CODES)."""
    from .runner import run

    return run(argv if argv is not None else sys.argv[1:])
