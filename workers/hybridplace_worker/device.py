"""Device facts recorded with every result: CPU model and cores, memory, GPU, torch and CUDA.

CPU counts honour the container's limits: a pod limited to 2 CPUs on a 64-core node must not run
64 torch threads, so :func:`available_cpus` reads the affinity mask and the cgroup CPU quota.
GPU power comes from NVML (``libnvidia-ml.so.1``) through ctypes when the driver provides it.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
from collections.abc import Callable
from pathlib import Path

from .errors import Reason, WorkerError


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None if unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def available_cpus(quota: float | None = None, affinity: int | None = None) -> int:
    """CPUs this process may use: the affinity mask, capped by the cgroup quota (rounded up)."""
    if affinity is None:
        affinity = len(os.sched_getaffinity(0))
    if quota is None:
        quota = cgroup_cpu_quota()
    if quota is not None:
        return max(1, min(affinity, math.ceil(quota)))
    return max(1, affinity)


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_mib(meminfo: Path = Path("/proc/meminfo"), cgroup: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Host memory in MiB, capped by the cgroup memory limit."""
    total = None
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) // 1024  # kB -> MiB
    except OSError:
        pass
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limit_mib = int(limit) // (1024 * 1024)
            total = min(total, limit_mib) if total else limit_mib
    except (OSError, ValueError):
        pass
    return total


class Nvml:
    """The few NVML calls we need, through ctypes (no pynvml dependency). ``lib`` is injectable."""

    def __init__(self, lib: object | None = None):
        if lib is None:
            lib = ctypes.CDLL("libnvidia-ml.so.1")
        self.lib = lib
        if self.lib.nvmlInit_v2() != 0:
            raise OSError("nvmlInit_v2 failed")

    def power_limit_watts(self, index: int) -> float | None:
        handle = ctypes.c_void_p()
        if self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(handle)) != 0:
            return None
        milliwatts = ctypes.c_uint()
        if self.lib.nvmlDeviceGetEnforcedPowerLimit(handle, ctypes.byref(milliwatts)) != 0:
            return None
        return milliwatts.value / 1000.0

    def driver_version(self) -> str | None:
        buf = ctypes.create_string_buffer(96)  # NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE is 80
        if self.lib.nvmlSystemGetDriverVersion(buf, ctypes.c_uint(len(buf))) != 0:
            return None
        return buf.value.decode("ascii", "replace") or None


def gpu_driver_version(nvml_factory: Callable[[], Nvml] = Nvml) -> str | None:
    """The NVIDIA driver's version (e.g. ``580.159.03``), or None without NVML."""
    try:
        return nvml_factory().driver_version()
    except (OSError, AttributeError):
        return None


def gpu_power_watts(index: int, nvml_factory: Callable[[], Nvml] = Nvml) -> float | None:
    """The GPU's enforced power limit in watts (its board power cap), or None without NVML."""
    try:
        return nvml_factory().power_limit_watts(index)
    except (OSError, AttributeError):
        return None


def require_cuda(torch_module) -> None:
    """Raise NoDevice unless torch sees a CUDA device."""
    if not torch_module.cuda.is_available():
        built = torch_module.version.cuda
        raise WorkerError(
            Reason.NO_DEVICE,
            "no CUDA device is visible to torch "
            f"(torch {torch_module.__version__}, built for CUDA {built or 'none'}); "
            "run on a GPU node with the NVIDIA device plugin, or use --device cpu",
        )


def describe_device(torch_module, device: str, threads: int, node: str | None = None) -> dict:
    """Device facts for the result. ``device`` is ``cpu`` or ``cuda``.

    For ``cuda``, name and memoryMiB describe the GPU; cores and threads the host side.
    """
    facts: dict = {
        "accelerator": "cpu",
        "name": cpu_model_name(),
        "node": node,
        "cores": available_cpus(),
        "threads": threads,
        "interopThreads": torch_module.get_num_interop_threads(),
        "memoryMiB": memory_mib(),
        "torchVersion": torch_module.__version__.split("+")[0],
        "cudaVersion": None,
        "powerWatts": None,
        "driverVersion": None,
        "cpuName": cpu_model_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
    }
    if device == "cuda":
        index = torch_module.cuda.current_device()
        props = torch_module.cuda.get_device_properties(index)
        facts.update(
            accelerator="nvidia-gpu",
            name=props.name,
            memoryMiB=props.total_memory // (1024 * 1024),
            cudaVersion=torch_module.version.cuda,
            powerWatts=gpu_power_watts(index),
            driverVersion=gpu_driver_version(),
            computeCapability=f"{props.major}.{props.minor}",
        )
    return facts
