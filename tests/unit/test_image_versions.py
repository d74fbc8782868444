"""One version everywhere an image is named: the builder (`make images`, hack/images/common.sh)
tags with the project's version, and the chart (appVersion, the operator image's default tag,
the worker images in values.yaml) and the operator's own defaults name the same tags."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import yaml
from hybridplace import __version__
from hybridplace.config import DEFAULT_IMAGE_CPU, DEFAULT_IMAGE_GPU

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "hybridplace"


def builder(*names: str) -> list[str]:
    """What hack/images/common.sh sets, as the image scripts see it."""
    script = f'here={REPO}; . "$here/hack/images/common.sh"; echo ' + " ".join(f'"${n}"' for n in names)
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY", "VERSION")}
    with tempfile.TemporaryDirectory() as cache:
        env["HP_CACHE"] = cache  # the script makes its images folder there
        out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def pyproject_version(folder: str) -> str:
    return re.search(r'^version = "(.+)"', (REPO / folder / "pyproject.toml").read_text(), re.M).group(1)


def test_the_builder_tags_with_the_projects_version():
    version, registry = builder("VERSION", "REGISTRY")
    assert version == pyproject_version("operator") == pyproject_version("workers") == __version__
    assert registry == "ghcr.io/hybridplace"


def test_the_chart_names_the_images_the_builder_makes():
    (version, registry) = builder("VERSION", "REGISTRY")
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert chart["appVersion"] == version
    assert values["image"]["repository"] == f"{registry}/operator"
    assert values["image"]["tag"] in ("", version)  # "" means appVersion
    assert values["settings"]["workerImageCpu"] == f"{registry}/worker-cpu:{version}" == DEFAULT_IMAGE_CPU
    assert values["settings"]["workerImageGpu"] == f"{registry}/worker-cuda:{version}" == DEFAULT_IMAGE_GPU


def test_the_builder_knows_the_three_images_the_chart_needs():
    script = (REPO / "hack" / "images" / "build.sh").read_text()
    assert re.search(r"images=\(operator worker-cpu worker-cuda\)", script)
    for dockerfile in ("operator/Dockerfile", "workers/Dockerfile.cpu", "workers/Dockerfile.cuda"):
        text = (REPO / dockerfile).read_text()
        assert re.search(r"^ARG BASE_IMAGE=\S+\nFROM \$\{BASE_IMAGE\}$", text, re.M), dockerfile
        assert re.search(r"^USER 65532:65532$", text, re.M), dockerfile  # the chart's runAsUser
