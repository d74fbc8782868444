"""benchmarks/worker_vs_perf_analyzer.py keeps idle CPUs polling for the run by holding a PM QoS
request of 0 us open (/dev/cpu_dma_latency), and says so; where it may not, it says why and runs."""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "worker_vs_perf_analyzer.py"
_spec = importlib.util.spec_from_file_location("worker_vs_perf_analyzer_idle", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_the_request_is_a_native_int_of_zero_held_until_the_run_ends(tmp_path):
    # A regular file stands in for the character device: the kernel reads the same 4 bytes.
    qos = tmp_path / "cpu_dma_latency"
    qos.write_bytes(b"")
    before = _open_fds()
    with bench.idle_polling(qos) as said:
        assert qos.read_bytes() == struct.pack("i", 0)
        assert len(_open_fds() - before) == 1  # held open: the kernel drops the request on close
        assert said == f"idle CPUs polling ({qos} held at 0 us)"
    assert _open_fds() == before


def test_the_file_is_closed_when_the_run_fails(tmp_path):
    qos = tmp_path / "cpu_dma_latency"
    qos.write_bytes(b"")
    before = _open_fds()
    with pytest.raises(RuntimeError), bench.idle_polling(qos):
        raise RuntimeError("a run that failed")
    assert _open_fds() == before


def test_without_the_device_the_run_goes_on_and_says_why(tmp_path):
    missing = tmp_path / "nowhere" / "cpu_dma_latency"
    with bench.idle_polling(missing) as said:
        assert said == f"idle CPUs left alone ({missing}: No such file or directory)"


def test_a_path_that_cannot_be_written_is_left_alone_and_named(tmp_path):
    # Not root's to bypass, unlike a read-only file: a directory cannot be opened for writing.
    with bench.idle_polling(tmp_path) as said:
        assert said == f"idle CPUs left alone ({tmp_path}: Is a directory)"
