"""The built images (`make images`), each entrypoint run inside its own root filesystem as the
chart and the operator run them: as the image's non-root user, the root read-only, an empty
/tmp and a memory /dev/shm. No container runtime here: buildah mounts the image (vfs), and the
process runs under chroot in a private mount namespace.

Needs root, buildah and the images in buildah's store (`make images`); run with `make
images-check` (marker `images`, outside `make test`: building them takes minutes).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.images

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("HP_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
             / "hybridplace")
IMAGES_CACHE = Path(os.environ.get("IMAGES_CACHE") or CACHE / "images")
BUILDAH = ["buildah", "--storage-driver", "vfs", "--root", str(IMAGES_CACHE / "storage"),
           "--runroot", str(IMAGES_CACHE / "run")]
VERSION = re.search(r'^version = "(.+)"', (REPO / "operator" / "pyproject.toml").read_text(), re.M).group(1)
REGISTRY = os.environ.get("REGISTRY", "ghcr.io/hybridplace")
# The chart's and the operator's pods: runAsUser/runAsGroup 65532 (charts/hybridplace,
# operator/hybridplace/builders/security.py).
CHART_USER = "65532:65532"

# The isolation: a private mount namespace; the image's root bound read-only; tmpfs on /tmp and
# /dev/shm (the emptyDirs the pods mount); /proc; a /dev of null, zero, random and urandom.
ISOLATE = r"""
set -eu
ro=$(mktemp -d)
mount --bind "$ROOTFS" "$ro"
mount -o remount,bind,ro "$ro"
mount -t tmpfs -o size=1g,mode=1777 tmpfs "$ro/tmp"
mount -t proc proc "$ro/proc"
mount -t tmpfs -o size=1m tmpfs "$ro/dev"
for d in null zero random urandom; do touch "$ro/dev/$d"; mount --bind "/dev/$d" "$ro/dev/$d"; done
mkdir "$ro/dev/shm"
mount -t tmpfs -o size=1g,mode=1777 tmpfs "$ro/dev/shm"
exec chroot --userspec="$USERSPEC" "$ro" "$@"
"""


@pytest.fixture(scope="module")
def image_root(request):
    """(root filesystem path, image config) of $REGISTRY/<name>:<version>, mounted by buildah."""
    if os.geteuid() != 0 or not shutil.which("buildah"):
        pytest.fail("needs root and buildah (apt-get install buildah); then `make images`", pytrace=False)
    mounted: list[str] = []
    roots: dict[str, tuple[str, dict]] = {}  # a 6 GB image takes a while to mount: once per name

    def mount(name: str) -> tuple[str, dict]:
        if name in roots:
            return roots[name]
        image = f"{REGISTRY}/{name}:{VERSION}"
        found = subprocess.run([*BUILDAH, "inspect", "--type", "image", image], capture_output=True, text=True)
        if found.returncode != 0:
            pytest.fail(f"{image} is not built: run `make images` ({found.stderr.strip()})", pytrace=False)
        config = json.loads(found.stdout)["OCIv1"]["config"]
        container = subprocess.run([*BUILDAH, "from", "--pull-never", image], capture_output=True, text=True,
                                   check=True).stdout.strip()
        mounted.append(container)
        root = subprocess.run([*BUILDAH, "mount", container], capture_output=True, text=True,
                              check=True).stdout.strip()
        roots[name] = root, config
        return roots[name]

    yield mount
    for container in mounted:
        subprocess.run([*BUILDAH, "rm", container], capture_output=True)


def run_in(root: str, config: dict, argv: list[str], user: str | None = None, timeout: float = 120):
    """argv inside the image's root, with the image's environment and working directory, as
    `user` (default: the image's USER)."""
    env = ["HOME=/", *config.get("Env", [])]  # runtimes set HOME=/ for a user without a home
    workdir = config.get("WorkingDir") or "/"
    inner = ["/usr/bin/env", "-i", *env, "/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv]
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", ISOLATE, "isolate",
                           *inner], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "ROOTFS": root, "USERSPEC": user or config["User"]})


def entrypoint(config: dict) -> list[str]:
    return list(config.get("Entrypoint") or [])


@pytest.mark.parametrize("name", ["operator", "worker-cpu"])
def test_the_image_runs_as_the_charts_non_root_user_on_a_read_only_root(image_root, name):
    root, config = image_root(name)
    assert config["User"] == CHART_USER, f"{name}: USER {config.get('User')!r}, the chart runs {CHART_USER}"
    who = run_in(root, config, ["/bin/sh", "-c", "id -u; id -g; touch /probe"])
    assert who.stdout.split()[:2] == ["65532", "65532"], who.stdout + who.stderr
    assert "Read-only file system" in who.stderr, who.stderr  # the root really is read-only here
    as_root = run_in(root, config, ["/bin/sh", "-c", "touch /probe"], user="0:0")
    assert as_root.returncode != 0 and "Read-only file system" in as_root.stderr, as_root.stderr
    tmp = run_in(root, config, ["/bin/sh", "-c", "touch /tmp/probe /dev/shm/probe && echo writable"])
    assert tmp.stdout.strip() == "writable", tmp.stderr


def test_the_operator_image_runs_hybridplace_and_carries_no_torch(image_root):
    root, config = image_root("operator")
    assert entrypoint(config) == ["hybridplace"] and config.get("Cmd") == ["run"]
    result = run_in(root, config, [*entrypoint(config), "run", "--help"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "--namespaces" in result.stdout and "HP_NAMESPACES" in result.stdout
    torch = run_in(root, config, ["python", "-c", "import torch"])
    assert torch.returncode != 0 and "No module named 'torch'" in torch.stderr, torch.stdout + torch.stderr


def test_the_worker_image_benchmarks_builtin_mlp_on_cpu(image_root):
    """The image's own `hybridplace-worker bench`, as a benchmark Job runs it; its compact result
    (the termination message the operator reads) must validate against workers/result.schema.json."""
    root, config = image_root("worker-cpu")
    assert entrypoint(config) == ["hybridplace-worker"]
    bench = [*entrypoint(config), "bench", "--model", "builtin:mlp", "--device", "cpu", "--batch-sizes", "1,4",
             "--duration-seconds", "1", "--warmup-seconds", "0.2", "--termination-log", "/tmp/termination-log",
             "--output", ""]
    result = run_in(root, config, ["/bin/sh", "-c", '"$@" && cat /tmp/termination-log', "bench", *bench],
                    timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    compact = json.loads(result.stdout)
    spec = importlib.util.spec_from_file_location("worker_schema_check",
                                                  REPO / "tests" / "unit" / "worker" / "worker_schema_check.py")
    schema_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(schema_check)
    schema_check.assert_valid(compact)  # workers/result.schema.json
    assert compact["ok"] is True and compact["model"]["name"] == "builtin:mlp"
    assert compact["device"]["accelerator"] == "cpu" and compact["workerVersion"] == VERSION
    rows = [dict(zip(compact["cols"], row, strict=True)) for row in compact["points"]]
    assert sorted(r["b"] for r in rows) == [1, 4], compact
    assert all(r["p50"] > 0 and r["rps"] > 0 for r in rows), compact


def test_the_worker_images_triton_stub_finds_every_library_it_links_to(image_root):
    """Serving runs Triton's python-backend stub, which links to libpython3.11: an image without
    it benchmarked with torch (the test above) and could not serve at all."""
    root, config = image_root("worker-cpu")
    find = ("import os, pytriton; print(os.path.join(os.path.dirname(pytriton.__file__), 'tritonserver', "
            "'python_backend_stubs', '3.11', 'triton_python_backend_stub'))")
    result = run_in(root, config, ["/bin/sh", "-c", f'stub=$(python -c "{find}") && ldd "$stub"'])
    assert result.returncode == 0 and "libpython3.11" in result.stdout, result.stdout + result.stderr
    assert "not found" not in result.stdout, result.stdout


def test_the_store_keeps_one_build_of_each_image():
    """`make images` drops each tag's previous build and anything left untagged: in vfs every image
    is a full copy, and the untagged worker-cpu builds (6.2 GB each) once filled the disk."""
    if os.geteuid() != 0 or not shutil.which("buildah"):
        pytest.fail("needs root and buildah (apt-get install buildah); then `make images`", pytrace=False)
    listed = subprocess.run([*BUILDAH, "images", "--format", "{{.Name}}:{{.Tag}} {{.ID}}"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    untagged = [line for line in listed if line.startswith("<none>")]
    assert not untagged, f"untagged images left in {IMAGES_CACHE / 'storage'}: {untagged}"
