"""GPU code paths, exercised for their logic with a mock torch: no GPU needed."""

import contextlib
import types

import pytest
from hybridplace_worker.device import Nvml, describe_device, gpu_power_watts, require_cuda
from hybridplace_worker.engine_torch import make_request, make_timer, worker_factory
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.timing import CudaEventTimer, Timer


class MockStream:
    def __init__(self, log):
        self.log = log

    def synchronize(self):
        self.log.append("stream.synchronize")


class MockTensor:
    def __init__(self, where, log):
        self.where = where
        self.log = log

    def to(self, target, non_blocking=False):
        self.log.append(f"to {target} non_blocking={non_blocking}")
        return MockTensor(str(target), self.log)


def mock_torch(log, cuda_available=True):
    """Just the torch surface the GPU paths touch."""

    @contextlib.contextmanager
    def ctx(name):
        log.append(f"enter {name}")
        yield
        log.append(f"exit {name}")

    class MockEvent:
        def __init__(self, enable_timing):
            assert enable_timing
            log.append("event")

    cuda = types.SimpleNamespace(
        is_available=lambda: cuda_available,
        current_stream=lambda: MockStream(log),
        Stream=lambda: "stream-object",
        stream=lambda s: ctx(f"cuda.stream({s})"),
        Event=MockEvent,
        current_device=lambda: 0,
        get_device_properties=lambda i: types.SimpleNamespace(
            name="NVIDIA H100 80GB HBM3", total_memory=80 * 1024**3, major=9, minor=0
        ),
    )
    return types.SimpleNamespace(
        cuda=cuda,
        device=lambda name: name,
        inference_mode=lambda: ctx("inference_mode"),
        version=types.SimpleNamespace(cuda="13.2"),
        __version__="2.15.0+cu132",
        get_num_interop_threads=lambda: 4,
    )


def test_cpu_timer_has_no_sync():
    timer = make_timer(mock_torch([]), "cpu")
    assert type(timer) is Timer and timer.sync is None


def test_gpu_sync_timer_synchronizes_the_current_stream():
    log = []
    timer = make_timer(mock_torch(log), "cuda", "sync")
    timer.measure(lambda: log.append("forward"))
    assert log == ["forward", "stream.synchronize"]


def test_gpu_event_timer_uses_cuda_events():
    log = []
    timer = make_timer(mock_torch(log), "cuda", "events")
    assert isinstance(timer, CudaEventTimer) and log == ["event", "event"]


def test_unknown_gpu_timer_is_invalid():
    with pytest.raises(WorkerError) as info:
        make_timer(mock_torch([]), "cuda", "stopwatch")
    assert info.value.reason == Reason.INVALID_ARGUMENT


def test_gpu_request_copies_inputs_to_the_device_and_outputs_back():
    log = []
    torch_mock = mock_torch(log)

    def module(*xs):
        log.append(f"forward on {[x.where for x in xs]}")
        return (MockTensor("cuda", log),)

    with pytest.MonkeyPatch.context() as mp:
        import hybridplace_worker.engine_torch as engine

        mp.setattr(engine, "flatten_outputs", lambda out: list(out))
        call = make_request(module, [MockTensor("cpu", log)], "cuda", torch_mock)
        call()
    assert log == ["to cuda non_blocking=True", "forward on ['cuda']", "to cpu non_blocking=True"]


def test_gpu_worker_enters_inference_mode_and_its_own_stream():
    log = []
    factory = worker_factory(lambda: None, "cuda", mock_torch(log))
    with factory(0) as call:
        assert callable(call)
    assert log == [
        "enter inference_mode",
        "enter cuda.stream(stream-object)",
        "exit cuda.stream(stream-object)",
        "exit inference_mode",
    ]


def test_no_cuda_is_no_device():
    with pytest.raises(WorkerError) as info:
        require_cuda(mock_torch([], cuda_available=False))
    assert info.value.reason == Reason.NO_DEVICE and "--device cpu" in info.value.message


class MockNvmlLib:
    """ctypes-like NVML: fills the out-parameters like libnvidia-ml does."""

    def __init__(self, init_rc=0, limit_mw=350000):
        self.init_rc = init_rc
        self.limit_mw = limit_mw

    def nvmlInit_v2(self):
        return self.init_rc

    def nvmlDeviceGetHandleByIndex_v2(self, index, handle_ref):
        return 0

    def nvmlDeviceGetEnforcedPowerLimit(self, handle, mw_ref):
        mw_ref._obj.value = self.limit_mw
        return 0


def test_nvml_power_limit_in_watts():
    assert gpu_power_watts(0, lambda: Nvml(MockNvmlLib(limit_mw=350000))) == 350.0


def test_missing_nvml_gives_no_power():
    def broken():
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    assert gpu_power_watts(0, broken) is None
    assert gpu_power_watts(0, lambda: Nvml(MockNvmlLib(init_rc=9))) is None


def test_gpu_device_facts(monkeypatch):
    import hybridplace_worker.device as device

    monkeypatch.setattr(device, "gpu_power_watts", lambda index: 700.0)
    monkeypatch.setattr(device, "gpu_driver_version", lambda: "580.159.04")
    facts = describe_device(mock_torch([]), "cuda", threads=4, node="gpu-node-1")
    assert facts["driverVersion"] == "580.159.04"
    assert facts["accelerator"] == "nvidia-gpu" and facts["name"] == "NVIDIA H100 80GB HBM3"
    assert facts["memoryMiB"] == 80 * 1024 and facts["cudaVersion"] == "13.2"
    assert facts["torchVersion"] == "2.15.0" and facts["powerWatts"] == 700.0
    assert facts["node"] == "gpu-node-1" and facts["threads"] == 4


class MockNvmlDriverLib(MockNvmlLib):
    """Also answers nvmlSystemGetDriverVersion, writing into the caller's buffer as NVML does."""

    def __init__(self, version=b"580.159.04", rc=0):
        super().__init__()
        self.version, self.rc = version, rc

    def nvmlSystemGetDriverVersion(self, buf, length):
        if self.rc == 0:
            buf.value = self.version
        return self.rc


def test_nvml_driver_version():
    from hybridplace_worker.device import gpu_driver_version

    assert gpu_driver_version(lambda: Nvml(MockNvmlDriverLib())) == "580.159.04"
    assert gpu_driver_version(lambda: Nvml(MockNvmlDriverLib(rc=3))) is None  # NVML_ERROR_NOT_SUPPORTED


def test_missing_nvml_gives_no_driver_version():
    from hybridplace_worker.device import gpu_driver_version

    def broken():
        raise OSError("libnvidia-ml.so.1: cannot open shared object file")

    assert gpu_driver_version(broken) is None
    assert gpu_driver_version(lambda: Nvml(MockNvmlLib())) is None  # an NVML without the call
