"""The Triton repository generator (bench --engine triton and serve use it) and server wiring."""

import sys
from pathlib import Path

import pytest
from hybridplace_worker.errors import Reason, WorkerError
from hybridplace_worker.triton_repo import (
    ServingConfig,
    TensorConfig,
    render_config_pbtxt,
    write_model_repository,
)
from hybridplace_worker.triton_server import (
    Ports,
    TritonInstall,
    locate_tritonserver,
    prepare_backends,
    python_libdir,
    server_command,
    server_env,
)

INPUTS = [TensorConfig("input", (3, 32, 32), "float32")]
OUTPUTS = [TensorConfig("output", (10,), "float32")]


def test_config_carries_the_decision():
    text = render_config_pbtxt(
        "model",
        INPUTS,
        OUTPUTS,
        ServingConfig(
            max_batch_size=16,
            preferred_batch_sizes=(8, 4, 8),
            max_queue_delay_us=2000,
            instance_kind="gpu",
            instances=2,
            threads=3,
        ),
        artifact_name="model.pt",
        artifact_format="torchscript",
    )
    assert 'name: "model"' in text and 'backend: "python"' in text
    assert "max_batch_size: 16" in text
    assert '{ name: "input" data_type: TYPE_FP32 dims: [ 3, 32, 32 ] }' in text
    assert '{ name: "output" data_type: TYPE_FP32 dims: [ 10 ] }' in text
    assert "dynamic_batching {\n  preferred_batch_size: [ 4, 8 ]\n  max_queue_delay_microseconds: 2000\n}" in text
    assert "{ count: 2 kind: KIND_GPU }" in text
    assert 'parameters: { key: "hp_threads" value: { string_value: "3" } }' in text
    assert 'parameters: { key: "hp_format" value: { string_value: "torchscript" } }' in text


def test_scalar_inputs_are_reshaped_and_cpu_is_the_default():
    text = render_config_pbtxt(
        "m",
        [TensorConfig("flag", (), "bool")],
        OUTPUTS,
        ServingConfig(),
        artifact_name="model.pt",
        artifact_format="torchscript",
    )
    assert '{ name: "flag" data_type: TYPE_BOOL dims: [ 1 ] reshape: { shape: [ ] } }' in text
    assert "{ count: 1 kind: KIND_CPU }" in text and "preferred_batch_size" not in text


@pytest.mark.parametrize(
    "cfg",
    [
        ServingConfig(max_batch_size=0),
        ServingConfig(max_batch_size=4, preferred_batch_sizes=(8,)),
        ServingConfig(max_queue_delay_us=-1),
        ServingConfig(instance_kind="tpu"),
        ServingConfig(instances=0),
    ],
)
def test_bad_serving_configs_are_invalid(cfg):
    with pytest.raises(WorkerError) as info:
        cfg.validate()
    assert info.value.reason == Reason.INVALID_ARGUMENT


def test_repository_layout(tmp_path):
    artifact = tmp_path / "weights.pt"
    artifact.write_bytes(b"not really torchscript")
    model_dir = write_model_repository(
        tmp_path / "repo",
        model_name="model",
        artifact=artifact,
        artifact_format="torchscript",
        inputs=INPUTS,
        outputs=OUTPUTS,
        serving=ServingConfig(),
    )
    assert sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*")) == [
        "1",
        "1/model.pt",
        "1/model.py",
        "config.pbtxt",
    ]
    assert (model_dir / "1" / "model.pt").read_bytes() == b"not really torchscript"
    assert "class TritonPythonModel" in (model_dir / "1" / "model.py").read_text()
    # writing again replaces, never mixes
    write_model_repository(
        tmp_path / "repo",
        model_name="model",
        artifact=artifact,
        artifact_format="torch-export",
        inputs=INPUTS,
        outputs=OUTPUTS,
        serving=ServingConfig(),
    )
    assert sorted(p.name for p in (model_dir / "1").iterdir()) == ["model.pt2", "model.py"]


def test_server_command_binds_where_asked():
    install = TritonInstall(Path("/opt/tritonserver/bin/tritonserver"), Path("/opt/tritonserver/backends"))
    cmd = server_command(
        install,
        repository=Path("/r"),
        backends=Path("/b"),
        ports=Ports(1, 2, 3),
        address="127.0.0.1",
    )
    assert cmd[0] == "/opt/tritonserver/bin/tritonserver"
    for flag in (
        "--model-repository=/r",
        "--backend-directory=/b",
        "--http-address=127.0.0.1",
        "--grpc-address=127.0.0.1",
        "--metrics-address=127.0.0.1",
        "--http-port=1",
        "--grpc-port=2",
        "--metrics-port=3",
        "--exit-on-error=true",
    ):
        assert flag in cmd


def test_wheel_env_appends_bundled_libs_and_puts_this_python_first():
    install = TritonInstall(Path("/w/bin/tritonserver"), None, (Path("/w/libs"),), Path("/w"))
    env = server_env(install, {"LD_LIBRARY_PATH": "/usr/local/cuda/lib64", "PATH": "/usr/bin"})
    own = [str(python_libdir())] if python_libdir() else []  # this Python's libpython, first
    assert env["LD_LIBRARY_PATH"].split(":") == [*own, "/usr/local/cuda/lib64", "/w/libs"]
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert server_env(install, {"PATH": "/usr/bin"})["LD_LIBRARY_PATH"].split(":") == [
        *own,
        "/w/libs",
    ]
    image = TritonInstall(Path("/opt/tritonserver/bin/tritonserver"), Path("/opt/tritonserver/backends"))
    assert server_env(image, {"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}  # the image needs nothing


def test_explicit_binary_must_be_executable(tmp_path):
    with pytest.raises(WorkerError) as info:
        locate_tritonserver(str(tmp_path / "nope"))
    assert info.value.reason == Reason.SERVER_START_FAILED


def test_wheel_backend_dir_uses_the_stub_for_this_python(tmp_path):
    try:
        install = locate_tritonserver()
    except WorkerError:
        pytest.skip("no tritonserver on this machine")
    if install.wheel_root is None:
        pytest.skip("tritonserver is not the pytriton wheel's")
    backends = prepare_backends(install, tmp_path)
    python_dir = backends / "python"
    assert (python_dir / "libtriton_python.so").resolve().is_file()
    stub = (python_dir / "triton_python_backend_stub").resolve()
    assert stub.parent.name == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_dynamic_batching_can_be_left_out():
    text = render_config_pbtxt(
        "m",
        INPUTS,
        OUTPUTS,
        ServingConfig(dynamic_batching=False),
        artifact_name="model.pt",
        artifact_format="torchscript",
    )
    assert "dynamic_batching" not in text and "max_batch_size: 8" in text


@pytest.mark.parametrize("name", ["/tmp/x", "..", ".", "a/b", "", "x y", "../escape", "mod\nel"])
def test_a_model_name_that_is_not_one_triton_name_is_refused_and_nothing_is_deleted(tmp_path, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    root = tmp_path / "repo"
    root.mkdir()
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(b"x")
    if name == "/tmp/x":
        name = str(victim)  # an absolute name replaced the root: `--model-name /tmp/x` deleted /tmp/x
    with pytest.raises(WorkerError) as err:
        write_model_repository(
            root,
            model_name=name,
            artifact=artifact,
            artifact_format="torchscript",
            inputs=INPUTS,
            outputs=OUTPUTS,
            serving=ServingConfig(),
        )
    assert err.value.reason == Reason.INVALID_ARGUMENT and "--model-name" in err.value.message
    assert (victim / "keep.txt").read_text() == "precious"


def test_a_model_directory_that_is_a_link_out_of_the_root_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "model").symlink_to(victim)
    artifact = tmp_path / "model.pt"
    artifact.write_bytes(b"x")
    model_dir = write_model_repository(
        root,
        model_name="model.v-1_a",
        artifact=artifact,
        artifact_format="torchscript",
        inputs=INPUTS,
        outputs=OUTPUTS,
        serving=ServingConfig(),
    )
    assert model_dir == root / "model.v-1_a" and (model_dir / "config.pbtxt").is_file()
    write_model_repository(
        root,
        model_name="model",
        artifact=artifact,
        artifact_format="torchscript",
        inputs=INPUTS,
        outputs=OUTPUTS,
        serving=ServingConfig(),
    )
    assert not (root / "model").is_symlink() and (root / "model" / "1" / "model.pt").is_file()
    assert (victim / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize(
    ("address", "http", "grpc"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0", "0.0.0.0"),
        ("serving.local", "serving.local", "serving.local"),
        # Triton's HTTP and metrics servers (libevhtp) take an IPv6 address only as ipv6:<addr>:
        # given a bare one they bind 255.255.255.255. Its gRPC server takes [<addr>]: given a bare
        # one it fails, "Socket '::1:8001' already in use". A single-stack IPv6 pod's IP must work.
        ("fd00::1:2", "ipv6:fd00::1:2", "[fd00::1:2]"),
        ("[fd00::1:2]", "ipv6:fd00::1:2", "[fd00::1:2]"),
        ("::", "ipv6:::", "[::]"),
    ],
)
def test_server_command_binds_ipv4_ipv6_and_names(address, http, grpc):
    install = TritonInstall(Path("/opt/tritonserver/bin/tritonserver"), Path("/opt/tritonserver/backends"))
    cmd = server_command(install, repository=Path("/r"), backends=Path("/b"), ports=Ports(1, 2, 3), address=address)
    assert f"--http-address={http}" in cmd
    assert f"--metrics-address={http}" in cmd
    assert f"--grpc-address={grpc}" in cmd
