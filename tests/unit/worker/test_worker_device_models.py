"""Device facts from cgroup files, and the models' checks (tiny, CPU)."""

import pytest
import torch
from hybridplace_worker.catalog import BUILTIN_INPUTS, builtin_digest
from hybridplace_worker.device import available_cpus, cgroup_cpu_quota, cpu_model_name, memory_mib
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.models import (
    build_builtin,
    check_model_inputs,
    flatten_outputs,
    is_out_of_memory,
    load_model,
    synthetic_inputs,
)
from hybridplace_worker.spec import InputSpec


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(tmp_path) == 2.0


def test_available_cpus_honours_the_quota():
    assert available_cpus(quota=1.5, affinity=64) == 2
    assert available_cpus(quota=None, affinity=8) == 8
    assert available_cpus(quota=0.1, affinity=8) == 1


def test_memory_is_capped_by_the_cgroup(tmp_path):
    (tmp_path / "meminfo").write_text("MemTotal:       24683604 kB\n")
    (tmp_path / "memory.max").write_text(str(4 * 1024**3))
    assert memory_mib(tmp_path / "meminfo", tmp_path) == 4096
    (tmp_path / "memory.max").write_text("max")
    assert memory_mib(tmp_path / "meminfo", tmp_path) == 24683604 // 1024


def test_cpu_model_name(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n")
    assert cpu_model_name(tmp_path / "cpuinfo") == "AMD EPYC 7B13"


@pytest.mark.parametrize("name", ["mlp", "resnet", "transformer"])
def test_builtins_are_deterministic_and_fit_their_inputs(name):
    a, b = build_builtin(name), build_builtin(name)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    model = load_model(f"builtin:{name}", digest=builtin_digest(name), format="torchscript", inputs=[])
    outs = check_model_inputs(model, batches=(1, 3))
    assert len(outs) == 1 and outs[0].dtype == "float32"
    assert model.inputs == BUILTIN_INPUTS[name]


def test_builtin_with_the_wrong_digest_is_a_mismatch():
    with pytest.raises(WorkerError) as info:
        load_model("builtin:mlp", digest=builtin_digest("resnet"), format="torchscript", inputs=[])
    assert info.value.reason == Reason.DIGEST_MISMATCH


def test_builtin_with_other_inputs_is_an_input_mismatch():
    with pytest.raises(WorkerError) as info:
        load_model(
            "builtin:mlp",
            digest=None,
            format="torchscript",
            inputs=[InputSpec("input", (3,), "float32")],
        )
    assert info.value.reason == Reason.INPUT_MISMATCH


def test_unknown_builtin_is_not_found():
    with pytest.raises(WorkerError) as info:
        load_model("builtin:gpt5", digest=None, format="torchscript", inputs=[])
    assert info.value.reason == Reason.MODEL_NOT_FOUND and "builtin:mlp" in info.value.message


def test_synthetic_inputs_follow_the_spec():
    a, ids, flag = synthetic_inputs(
        [
            InputSpec("a", (2, 3), "float16"),
            InputSpec("ids", (5,), "int64", high=7),
            InputSpec("f", (), "bool"),
        ],
        4,
    )
    assert a.shape == (4, 2, 3) and a.dtype == torch.float16
    assert ids.dtype == torch.int64 and int(ids.min()) >= 0 and int(ids.max()) < 7
    assert flag.shape == (4,) and flag.dtype == torch.bool


def test_flatten_outputs_and_oom_detection():
    t = torch.zeros(1)
    assert len(flatten_outputs({"b": t, "a": (t, [t])})) == 3
    with pytest.raises(TypeError):
        flatten_outputs("text")
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
