"""Finding, starting, waiting for and stopping ``tritonserver``.

Where the binary comes from, first match wins:

1. ``--tritonserver PATH`` / ``HP_TRITONSERVER``;
2. ``/opt/tritonserver/bin/tritonserver``: NVIDIA's Triton server image (the CUDA worker image);
3. the ``nvidia-pytriton`` wheel (the CPU image, and development machines): its
   ``pytriton/tritonserver/bin/tritonserver``, with the wheel's bundled libraries
   (``nvidia_pytriton.libs``) appended to ``LD_LIBRARY_PATH`` and a backend directory prepared
   beside the model repository whose python backend uses the stub built for this Python
   version (``python_backend_stubs/<major.minor>``). pytriton does the same before it starts
   the server; the python backend then runs model.py with this interpreter's packages, found
   through ``PATH``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from . import watchdog
from .errors import Reason, WorkerError

IMAGE_TRITON = Path("/opt/tritonserver")
# Quantile:allowed error pairs of Triton's latency summaries (p50, p90, p95, p99).
SUMMARY_QUANTILES = "0.5:0.05,0.9:0.01,0.95:0.005,0.99:0.001"
# Time kept after the points to stop the server: SIGINT, Triton's own exit (--exit-timeout-secs
# 5 on loopback; about a second in practice), SIGKILL of the group when it runs out.
STOP_RESERVE_S = 3.0
STOP_GRACE_S = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the worker dies, even by
    SIGKILL (the deadline's kill, a pod runner's), so no tritonserver outlives its worker. It
    only calls an already-resolved libc function, which is safe despite the worker's threads."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclasses.dataclass(frozen=True)
class TritonInstall:
    """A tritonserver binary and what it needs around it."""

    binary: Path
    backends: Path | None  # a ready backend directory, or None to prepare one from the wheel
    lib_dirs: tuple[Path, ...] = ()
    wheel_root: Path | None = None  # pytriton/tritonserver, when it comes from the wheel

    def python_stub(self) -> Path | None:
        if self.wheel_root is None:
            return None
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        return self.wheel_root / "python_backend_stubs" / version / "triton_python_backend_stub"


def _pytriton_root() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def locate_tritonserver(explicit: str | None = None) -> TritonInstall:
    """Where tritonserver is (see the module docstring); ServerStartFailed if nowhere."""
    if explicit:
        binary = Path(explicit)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise WorkerError(Reason.SERVER_START_FAILED, f"--tritonserver {explicit}: not an executable file")
        backends = binary.parent.parent / "backends"
        return TritonInstall(binary, backends if backends.is_dir() else IMAGE_TRITON / "backends")
    image_binary = IMAGE_TRITON / "bin" / "tritonserver"
    if image_binary.is_file():
        return TritonInstall(image_binary, IMAGE_TRITON / "backends")
    pytriton = _pytriton_root()
    if pytriton is not None and (pytriton / "tritonserver" / "bin" / "tritonserver").is_file():
        root = pytriton / "tritonserver"
        libs = pytriton.parent / "nvidia_pytriton.libs"
        if not libs.is_dir():  # an editable pytriton install keeps them here
            libs = root / "external_libs"
        return TritonInstall(root / "bin" / "tritonserver", None, (libs,), root)
    raise WorkerError(
        Reason.SERVER_START_FAILED,
        "no tritonserver found: set --tritonserver / HP_TRITONSERVER, run in NVIDIA's Triton image "
        "(/opt/tritonserver), or install nvidia-pytriton",
    )


def prepare_backends(install: TritonInstall, workdir: Path) -> Path:
    """The backend directory to pass to tritonserver (built under ``workdir`` for the wheel)."""
    if install.backends is not None:
        return install.backends
    assert install.wheel_root is not None
    stub = install.python_stub()
    if stub is None or not stub.is_file():
        raise WorkerError(
            Reason.SERVER_START_FAILED,
            f"the nvidia-pytriton wheel has no python backend stub for Python "
            f"{sys.version_info.major}.{sys.version_info.minor} ({stub})",
        )
    python_dir = workdir / "backends" / "python"
    if python_dir.exists():
        shutil.rmtree(python_dir)
    python_dir.mkdir(parents=True)
    for item in (install.wheel_root / "backends" / "python").iterdir():
        if item.is_file():
            (python_dir / item.name).symlink_to(item)
    (python_dir / "triton_python_backend_stub").symlink_to(stub)
    return workdir / "backends"


def server_env(install: TritonInstall, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for tritonserver: bundled libraries, and this Python first on PATH."""
    env = dict(os.environ if base is None else base)
    if install.lib_dirs:
        extra = ":".join(str(p) for p in install.lib_dirs)
        current = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = f"{current}:{extra}" if current else extra
    if install.wheel_root is not None:
        env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        libpython = python_libdir()
        if libpython is not None:
            # The stub embeds libpython3.X: this interpreter's own copy first, so the stub runs
            # the same Python build (and works where the distribution's libpython is absent).
            current = env.get("LD_LIBRARY_PATH")
            env["LD_LIBRARY_PATH"] = f"{libpython}:{current}" if current else str(libpython)
    return env


def python_libdir() -> Path | None:
    """The directory holding this interpreter's shared libpython, if it has one."""
    libdir = sysconfig.get_config_var("LIBDIR")
    soname = sysconfig.get_config_var("INSTSONAME")
    if libdir and soname and (Path(libdir) / soname).exists():
        return Path(libdir)
    return None


@dataclasses.dataclass(frozen=True)
class Ports:
    http: int
    grpc: int
    metrics: int


def free_ports(n: int = 3, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct ports that were free a moment ago on ``host``."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def bind_addresses(address: str) -> tuple[str, str]:
    """(HTTP and metrics, gRPC) forms of ``address`` for tritonserver's ``--*-address`` flags.

    IPv4 addresses and names pass as they are. An IPv6 address (a single-stack IPv6 pod's IP,
    bare or in brackets) needs two spellings: Triton's HTTP and metrics servers (libevhtp) take
    ``ipv6:<addr>`` and, given a bare one, bind 255.255.255.255; its gRPC server takes
    ``[<addr>]`` and, given a bare one, exits with "Socket '<addr>:<port>' already in use"."""
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return address, address
    if ip.version == 6:
        return f"ipv6:{bare}", f"[{bare}]"
    return address, address


def server_command(
    install: TritonInstall,
    *,
    repository: Path,
    backends: Path,
    ports: Ports,
    address: str,
    exit_timeout_s: int = 30,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The tritonserver command line (used by bench and, exec'd, by serve)."""
    http_address, grpc_address = bind_addresses(address)
    cmd = [
        str(install.binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--http-address={http_address}",
        f"--grpc-address={grpc_address}",
        f"--metrics-address={http_address}",
        f"--http-port={ports.http}",
        f"--grpc-port={ports.grpc}",
        f"--metrics-port={ports.metrics}",
        "--strict-readiness=true",
        "--exit-on-error=true",
        f"--exit-timeout-secs={exit_timeout_s}",
        # Latency summaries (nv_inference_request_summary_us and friends, quantiles over a
        # sliding window) beside the counters, so a percentile can be queried per pod.
        "--metrics-config=summary_latencies=true",
        f"--metrics-config=summary_quantiles={SUMMARY_QUANTILES}",
    ]
    if install.wheel_root is not None:
        cmd.append(f"--cache-directory={install.wheel_root / 'caches'}")
    cmd.extend(extra_args)
    return cmd


class TritonProcess:
    """A tritonserver child process on loopback: start, wait until ready, stop by PID."""

    def __init__(self, command: list[str], env: dict[str, str], *, http_url: str, log_path: Path):
        self.command = command
        self.env = env
        self.http_url = http_url
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def exited(self) -> bool:
        """Started, and no longer running."""
        return self.proc is not None and self.proc.poll() is not None

    def wait_exit(self, timeout_s: float) -> bool:
        """Whether the process has exited, waiting up to ``timeout_s`` for it: a server killed
        a moment ago breaks its connections before it can be reaped."""
        if self.proc is None:
            return False
        try:
            self.proc.wait(timeout=max(timeout_s, 0))
        except subprocess.TimeoutExpired:
            return False
        return True

    def start(self) -> None:
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
                # its own process group: the python backend stubs are stopped with it
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkerError(Reason.SERVER_START_FAILED, f"cannot start {self.command[0]}: {exc}") from exc
        finally:
            log.close()
        watchdog.register_child(self.proc)

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0

    def wait_ready(self, timeout_s: float, models: Sequence[str] = ()) -> float:
        """Poll until the server and ``models`` are ready; returns seconds waited.

        ServerStartFailed (with the log's tail) if the process exits or ``timeout_s`` passes.
        """
        assert self.proc is not None
        start = time.monotonic()
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in models)]
        while True:
            code = self.proc.poll()
            if code is not None:
                raise WorkerError(
                    Reason.SERVER_START_FAILED,
                    f"tritonserver exited with code {code} before it was ready; last log lines:\n" + self.log_tail(),
                )
            if all(self._get(p) == 200 for p in paths):
                return time.monotonic() - start
            if time.monotonic() - start > timeout_s:
                tail = self.log_tail()
                self.stop(grace_s=2)
                raise WorkerError(
                    Reason.SERVER_START_FAILED,
                    f"tritonserver was not ready within {timeout_s:g} s; last log lines:\n{tail}",
                )
            time.sleep(0.2)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGINT (Triton's graceful stop), then SIGKILL of its process group after ``grace_s``."""
        if self.proc is None:
            return None
        grace_s = max(float(grace_s), 0.0)
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        if self.proc.poll() is None or _group_alive(self.proc.pid):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        watchdog.unregister_child(self.proc)
        return self.proc.returncode


def loopback_server(install: TritonInstall, repository: Path, workdir: Path) -> tuple[TritonProcess, Ports]:
    """A tritonserver for ``repository`` on free loopback ports, not yet started: what the
    ``triton`` engine and the benchmarks run. Its backends and log go under ``workdir``."""
    ports = Ports(*free_ports(3))
    command = server_command(
        install,
        repository=repository,
        backends=prepare_backends(install, workdir),
        ports=ports,
        address="127.0.0.1",
        exit_timeout_s=5,
    )
    server = TritonProcess(
        command, server_env(install), http_url=f"http://127.0.0.1:{ports.http}", log_path=workdir / "tritonserver.log"
    )
    return server, ports


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
