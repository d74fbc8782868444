"""Engine ``torch``: the model measured in-process, one forward pass per request.

What a request is: the batch's inputs (made once, in host memory) copied to the device, one
forward pass under ``torch.inference_mode``, the outputs copied back to the host. On a GPU the
copies are part of the latency, as they are when serving.

Concurrency N means N threads in this process, each issuing requests back to back on the same
model (torch releases the GIL inside operators). On a GPU each thread has its own CUDA stream
and waits only for its own work. Intra-op threads (``torch.set_num_threads``) are set once, to
``--threads`` or the CPUs available to the container, and recorded.

GPU timing: by default the host clock around the call plus a synchronize of the worker's stream
(what a caller sees); ``--gpu-timer events`` uses CUDA events instead (device time). Both are
unit-tested with mock devices on machines without a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from .errors import Reason, WorkerError
from .models import (
    LoadedModel,
    error_summary,
    flatten_outputs,
    is_out_of_memory,
    module_on,
    synthetic_inputs,
)
from .timing import CudaEventTimer, PointMeasurement, Timer, WindowPlan, measure_point

GPU_TIMERS = ("sync", "events")


def make_timer(torch_module, device: str, gpu_timer: str = "sync") -> Timer:
    """The timer for ``device``: plain host clock on CPU; stream sync or CUDA events on GPU."""
    if device == "cpu":
        return Timer()
    if gpu_timer == "events":
        return CudaEventTimer(lambda: torch_module.cuda.Event(enable_timing=True))
    if gpu_timer == "sync":
        return Timer(sync=lambda: torch_module.cuda.current_stream().synchronize())
    raise WorkerError(Reason.INVALID_ARGUMENT, f"--gpu-timer {gpu_timer!r} is not one of {', '.join(GPU_TIMERS)}")


def make_request(module, host_inputs, device: str, torch_module) -> Callable[[], object]:
    """One request: inputs to the device, forward, outputs back to the host."""
    if device == "cpu":

        def call_cpu():
            return module(*host_inputs)

        return call_cpu
    target = torch_module.device("cuda")

    def call_cuda():
        xs = [t.to(target, non_blocking=True) for t in host_inputs]
        return [o.to("cpu", non_blocking=True) for o in flatten_outputs(module(*xs))]

    return call_cuda


def worker_factory(call: Callable[[], object], device: str, torch_module):
    """Per-thread setup: inference mode (thread-local in torch) and, on GPU, a CUDA stream."""

    @contextlib.contextmanager
    def factory(_index: int) -> Iterator[Callable[[], object]]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(torch_module.inference_mode())
            if device == "cuda":
                stack.enter_context(torch_module.cuda.stream(torch_module.cuda.Stream()))
            yield call

    return factory


def run_torch_engine(
    model: LoadedModel,
    *,
    device: str,
    batch_sizes: list[int],
    concurrency: list[int],
    plan: WindowPlan,
    threads: int,
    gpu_timer: str = "sync",
    may_extend: Callable[[], bool] = lambda: True,
    on_point: Callable[[int, PointMeasurement], None] = lambda b, m: None,
    search: Callable[[Callable[[int, int], PointMeasurement]], object] | None = None,
) -> list[tuple[int, PointMeasurement]]:
    """Measure the (batch size, concurrency) points ``search`` asks for (search.py; default:
    every one, batch-major); returns (batch size, measurement) pairs in measuring order."""
    import torch

    torch.set_num_threads(threads)
    if device == "cuda":
        from .device import require_cuda

        require_cuda(torch)
    module = module_on(model, device)
    timer = make_timer(torch, device, gpu_timer)
    results: list[tuple[int, PointMeasurement]] = []
    # The current batch size's inputs and request: an adaptive search moves between batch
    # sizes, so one is kept at a time and rebuilt (with its warm-up request) on a change.
    current: dict = {}

    def release() -> None:
        current.clear()
        if device == "cuda":
            torch.cuda.empty_cache()

    def prepare(batch: int) -> None:
        release()
        host_inputs = synthetic_inputs(model.inputs, batch)
        if device == "cuda":
            host_inputs = [t.pin_memory() for t in host_inputs]
        factory = worker_factory(make_request(module, host_inputs, device, torch), device, torch)
        with factory(0) as first:
            first()  # surfaces shape errors and OOM before any timing
            if device == "cuda":
                torch.cuda.synchronize()  # CUDA reports errors asynchronously
        current.update(batch=batch, factory=factory, inputs=host_inputs)

    def measure(batch: int, conc: int) -> PointMeasurement:
        try:
            if current.get("batch") != batch:
                prepare(batch)
            m = measure_point(current["factory"], concurrency=conc, plan=plan, timer=timer, may_extend=may_extend)
        except WorkerError:
            raise
        except Exception as exc:
            release()
            if is_out_of_memory(exc):
                done = sorted({b for b, _ in results})
                raise WorkerError(
                    Reason.OUT_OF_MEMORY,
                    f"batch size {batch} ran out of {device} memory"
                    + (f" (batch sizes {done} fit)" if done else "")
                    + f": {error_summary(exc)}",
                ) from exc
            raise WorkerError(
                Reason.INPUT_MISMATCH,
                f"--model {model.name} fails at batch size {batch}: {type(exc).__name__}: {error_summary(exc)}",
            ) from exc
        results.append((batch, m))
        on_point(batch, m)
        return m

    try:
        if search is None:
            for batch in batch_sizes:
                for conc in concurrency:
                    measure(batch, conc)
        else:
            search(measure)
    finally:
        release()
    return results
