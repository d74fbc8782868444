"""The timing loop's logic with fake clocks and mock CUDA events: no GPU, nothing timed."""

import contextlib
import math
import threading

import numpy as np
import pytest
from hybridplace_worker.timing import (
    CudaEventTimer,
    StabilityRule,
    Timer,
    Window,
    WindowPlan,
    measure_point,
    percentile,
    relative_range,
    simple_worker,
)
from hypothesis import given
from hypothesis import strategies as st


class FakeClock:
    """A nanosecond clock that only moves when a fake call advances it."""

    def __init__(self):
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += round(ms * 1e6)


class MockCudaEvent:
    """Stands in for torch.cuda.Event(enable_timing=True): records the fake device time."""

    def __init__(self, device_clock: FakeClock, log: list):
        self.device_clock = device_clock
        self.log = log
        self.t = None

    def record(self):
        self.log.append("record")
        self.t = self.device_clock.now

    def synchronize(self):
        self.log.append("synchronize")

    def elapsed_time(self, end) -> float:
        return (end.t - self.t) / 1e6  # ms, as torch returns it


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=200),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_matches_numpy_linear(values, q):
    values = sorted(values)
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-6)


def test_percentile_rejects_empty_and_out_of_range():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_relative_range():
    assert relative_range([10, 10, 10]) == 0
    assert relative_range([9, 10, 11]) == pytest.approx(0.2)
    assert relative_range([5]) == 0
    assert math.isinf(relative_range([0, 0, 1]))


def _windows(medians_ms, counts=None):
    counts = counts or [100] * len(medians_ms)
    return [
        Window(i * 10**9, (i + 1) * 10**9, [round(m * 1e6)] * c)
        for i, (m, c) in enumerate(zip(medians_ms, counts, strict=True))
    ]


def test_stability_rule_needs_enough_windows_within_threshold():
    rule = StabilityRule(threshold=0.10, stable_windows=3, max_windows=10)
    assert not rule.is_stable(_windows([1.0, 1.0]))  # too few windows
    assert rule.is_stable(_windows([1.0, 1.04, 0.98]))
    assert not rule.is_stable(_windows([1.0, 1.2, 1.0]))  # latency drifts 20%
    assert not rule.is_stable(_windows([1.0, 1.0, 1.0], counts=[100, 100, 80]))  # throughput drifts
    assert rule.is_stable(_windows([3.0, 1.0, 1.0, 1.02]))  # only the last three count


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(threshold=0),
        dict(threshold=1.5),
        dict(stable_windows=0),
        dict(stable_windows=4, max_windows=3),
    ],
)
def test_stability_rule_rejects_nonsense(kwargs):
    with pytest.raises(ValueError):
        StabilityRule(**kwargs)


def _fake_call(clock: FakeClock, latencies_ms):
    it = iter(latencies_ms)

    def call():
        clock.advance_ms(next(it))

    return call


def test_steady_call_is_stable_after_minimum_windows_and_percentiles_are_exact():
    clock = FakeClock()
    call = _fake_call(clock, [2.0] * 100000)
    plan = WindowPlan(window_s=0.1, warmup_s=0.01, warmup_calls=3, rule=StabilityRule(0.1, 3, 10))
    m = measure_point(simple_worker(call), concurrency=1, plan=plan, timer=Timer(clock=clock))
    assert m.stable and len(m.windows) == 3
    assert m.p50_ms == m.p99_ms == 2.0
    assert m.samples == 150  # 50 calls of 2 ms per 100 ms window
    assert m.throughput_rps == pytest.approx(500.0)


def _alternating_call(clock: FakeClock):
    """1 ms in one 50 ms stretch, 1.5 ms in the next: no three windows ever agree."""

    def call():
        clock.advance_ms(1.0 if (clock.now // 50_000_000) % 2 == 0 else 1.5)

    return call


def test_drifting_call_runs_max_windows_and_is_reported_unstable():
    clock = FakeClock()
    plan = WindowPlan(window_s=0.05, warmup_s=0, warmup_calls=0, rule=StabilityRule(0.1, 3, 6))
    m = measure_point(simple_worker(_alternating_call(clock)), concurrency=1, plan=plan, timer=Timer(clock=clock))
    assert len(m.windows) == 6
    assert not m.stable and m.spread >= 0.1


def test_may_extend_false_stops_at_the_minimum_and_marks_unstable():
    clock = FakeClock()
    plan = WindowPlan(window_s=0.05, warmup_s=0, warmup_calls=0, rule=StabilityRule(0.1, 3, 10))
    m = measure_point(
        simple_worker(_alternating_call(clock)),
        concurrency=1,
        plan=plan,
        timer=Timer(clock=clock),
        may_extend=lambda: False,
    )
    assert len(m.windows) == 3 and not m.stable


def test_warm_up_calls_are_not_measured():
    clock = FakeClock()
    lat = [100.0] * 5 + [1.0] * 100000  # a slow first few calls (lazy init, JIT)
    plan = WindowPlan(window_s=0.05, warmup_s=0, warmup_calls=5, rule=StabilityRule(0.1, 3, 10))
    m = measure_point(simple_worker(_fake_call(clock, lat)), concurrency=1, plan=plan, timer=Timer(clock=clock))
    assert m.max_ms == 1.0


def test_host_timer_calls_sync_after_each_call_inside_the_timed_region():
    clock = FakeClock()
    log = []

    def call():
        log.append("call")
        clock.advance_ms(1)

    def mock_sync():
        log.append("sync")
        clock.advance_ms(3)  # the device finishing its queued work

    end, latency = Timer(clock=clock, sync=mock_sync).measure(call)
    assert log == ["call", "sync"]
    assert latency == 4_000_000 and end == clock.now


def test_cuda_event_timer_reports_device_time_between_the_events():
    host = FakeClock()
    device = FakeClock()
    log = []
    timer = CudaEventTimer(lambda: MockCudaEvent(device, log), clock=host)

    def call():
        log.append("call")
        host.advance_ms(0.1)  # launch is quick on the host
        device.advance_ms(7)  # the kernels take 7 ms on the device

    end, latency = timer.measure(call)
    assert log == ["record", "call", "record", "synchronize"]
    assert latency == 7_000_000
    worker_timer = timer.for_worker()
    assert worker_timer is not timer and worker_timer._start is not timer._start  # events per thread


def test_threads_measure_every_worker_with_its_own_context():
    entered = []
    lock = threading.Lock()

    @contextlib.contextmanager
    def worker(index):
        with lock:
            entered.append((index, threading.current_thread().name))
        yield lambda: sum(range(200))

    plan = WindowPlan(window_s=0.02, warmup_s=0.005, warmup_calls=2, rule=StabilityRule(0.5, 3, 4))
    m = measure_point(worker, concurrency=3, plan=plan)
    assert sorted(i for i, _ in entered) == [0, 1, 2]
    assert len({name for _, name in entered}) == 3  # each in its own thread
    assert m.concurrency == 3 and 3 <= len(m.windows) <= 4
    assert m.samples > 0 and m.p50_ms <= m.p95_ms <= m.p99_ms <= m.max_ms


def test_a_failing_worker_surfaces_its_exception():
    def boom():
        raise RuntimeError("model exploded")

    plan = WindowPlan(window_s=0.01, warmup_s=0, warmup_calls=1, rule=StabilityRule(0.1, 3, 3))
    with pytest.raises(RuntimeError, match="model exploded"):
        measure_point(simple_worker(boom), concurrency=2, plan=plan)
    with pytest.raises(RuntimeError, match="model exploded"):
        measure_point(simple_worker(boom), concurrency=1, plan=plan)


def test_requests_slower_than_a_window_stretch_it_instead_of_leaving_it_empty():
    import time as real_time

    plan = WindowPlan(window_s=0.005, warmup_s=0, warmup_calls=1, rule=StabilityRule(0.99, 3, 3))
    m = measure_point(simple_worker(lambda: real_time.sleep(0.03)), concurrency=2, plan=plan)
    assert len(m.windows) == 3
    assert all(w.latencies_ns for w in m.windows)
    assert all(w.duration_s >= 0.005 for w in m.windows)
