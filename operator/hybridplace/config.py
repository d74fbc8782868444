"""Operator settings: one place, each a flag of `hybridplace run` with an environment default.

The Helm chart's `settings:` block sets the environment variables.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import __version__
from .placement.solver import MAX_ALTERNATIVES

DEFAULT_IMAGE_CPU = f"ghcr.io/hybridplace/worker-cpu:{__version__}"
DEFAULT_IMAGE_GPU = f"ghcr.io/hybridplace/worker-cuda:{__version__}"


_GATEWAY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_LEASE_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


# The longest duration a seconds setting takes: ten years. Longer is a typo, and above 2**63 the
# chart's whole-number rendering (templates/_helpers.tpl, hybridplace.number) would overflow.
MAX_SECONDS = 315_360_000
# The largest int32: the benchmark Job's ttlSecondsAfterFinished is one, and the API server
# refuses every Job with more (tests/integration/api/test_job_limits_server.py).
MAX_INT32 = 2**31 - 1

# The numeric settings' bounds, field: (smallest, largest). The chart's values.schema.json
# repeats them (tests/unit/test_chart_values_schema.py keeps them equal).
LIMITS: dict[str, tuple[float, float]] = {
    "workers": (1, 256),
    "resync_seconds": (1, MAX_SECONDS),
    "job_ttl_seconds": (0, MAX_INT32),
    "benchmark_backoff_limit": (0, 10),
    "max_alternatives": (0, MAX_ALTERNATIVES),  # the CRD's maxItems
    "stall_seconds": (10, MAX_SECONDS),
    "profile_max_age_seconds": (0, MAX_SECONDS),
    "calibration_warmup_seconds": (0, MAX_SECONDS),
    "calibration_reprofile_seconds": (10, MAX_SECONDS),
    "metrics_port": (0, 65535),
    "gateway_cache_seconds": (0, 3600),
    "observe_window_seconds": (10, 600),
}


@dataclass(frozen=True)
class Settings:
    """Every knob of the operator. Field help doubles as the CLI flag's help."""

    namespaces: tuple[str, ...] = field(
        default=(),
        metadata={"env": "HP_NAMESPACES", "help": "comma-separated namespaces to watch; empty: all"},
    )
    worker_image_cpu: str = field(
        default=DEFAULT_IMAGE_CPU,
        metadata={"env": "HP_WORKER_IMAGE_CPU", "help": "worker image for CPU pools"},
    )
    worker_image_gpu: str = field(
        default=DEFAULT_IMAGE_GPU,
        metadata={"env": "HP_WORKER_IMAGE_GPU", "help": "worker image for GPU pools"},
    )
    resync_seconds: float = field(
        default=300.0,
        metadata={"env": "HP_RESYNC_SECONDS",
                  "help": "how often each InferenceDeployment is checked against its children, seconds"},
    )
    job_ttl_seconds: int = field(
        default=3600,
        metadata={"env": "HP_JOB_TTL_SECONDS",
                  "help": "how long finished benchmark Jobs are kept (ttlSecondsAfterFinished), seconds"},
    )
    benchmark_backoff_limit: int = field(
        default=1, metadata={"env": "HP_BENCHMARK_BACKOFF_LIMIT", "help": "pod retries of a benchmark Job"}
    )
    workers: int = field(
        default=8, metadata={"env": "HP_WORKERS", "help": "handler threads (each reconciles one object at a time)"}
    )
    liveness: str = field(
        default="http://0.0.0.0:8080/healthz",
        metadata={"env": "HP_LIVENESS", "help": "liveness endpoint; empty disables it"},
    )
    max_alternatives: int = field(
        default=20, metadata={"env": "HP_MAX_ALTERNATIVES", "help": "alternatives kept in status.decision"}
    )
    prometheus_url: str = field(
        default="",
        metadata={"env": "HP_PROMETHEUS_URL",
                  "help": "Prometheus that scrapes the serving pods (http://host:port); empty: no "
                          "observations, and scaling mode Operator behaves as Off"},
    )
    prometheus_ca_file: str = field(
        default="",
        metadata={"env": "HP_PROMETHEUS_CA_FILE",
                  "help": "with an https:// --prometheus-url: a PEM file of the CA(s) its certificate is checked "
                          "against; empty: the system's CAs. The certificate is always checked"},
    )
    stall_seconds: float = field(
        default=600.0,
        metadata={"env": "HP_STALL_SECONDS",
                  "help": "the liveness probe fails when work is due and none progressed for this long, seconds"},
    )

    profile_max_age_seconds: float = field(
        default=2592000.0,
        metadata={"env": "HP_PROFILE_MAX_AGE_SECONDS",
                  "help": "measure a pool again when its measured ModelProfile is older than this, seconds "
                          "(30 days); 0: never. spec.benchmark.maxAge and a pool's profileMaxAge override it"},
    )
    calibration_warmup_seconds: float = field(
        default=90.0,
        metadata={"env": "HP_CALIBRATION_WARMUP_SECONDS",
                  "help": "calibration leaves out a pool's latency until its replicas have been Ready, unchanged, "
                          "this long (Triton's latency summary spans about a minute), seconds"},
    )
    calibration_reprofile_seconds: float = field(
        default=600.0,
        metadata={"env": "HP_CALIBRATION_REPROFILE_SECONDS",
                  "help": "measure a pool again when its calibration stays outside [0.67, 1.5] this long, seconds"},
    )
    observe_window_seconds: int = field(
        default=20,
        metadata={"env": "HP_OBSERVE_WINDOW_SECONDS",
                  "help": "the window Prometheus rates and the queue wait are taken over, seconds: it must hold at "
                          "least two scrapes of the serving pods (4 x their scrape interval is safe; the default "
                          "suits a 5 s scrape)"},
    )
    allowed_image_registries: tuple[str, ...] = field(
        default=(),
        metadata={"env": "HP_ALLOWED_IMAGE_REGISTRIES",
                  "help": "comma-separated registries (or repository prefixes) spec.serving.image may come "
                          "from; empty: any"},
    )
    default_gateway: str = field(
        default="",
        metadata={"env": "HP_DEFAULT_GATEWAY",
                  "help": "the Gateway API Gateway (namespace/name, or a name in the deployment's namespace) a "
                          "split's HTTPRoute attaches to when spec.serving.gateway is unset; empty: such splits "
                          "are limited to an even spread a Service carries"},
    )
    gateway_cache_seconds: float = field(
        default=30.0,
        metadata={"env": "HP_GATEWAY_CACHE_SECONDS",
                  "help": "how long whether the Gateway API is served, and whether a Gateway exists, is "
                          "remembered, seconds"},
    )
    metrics_port: int = field(
        default=8081,
        metadata={"env": "HP_METRICS_PORT",
                  "help": "port of the operator's Prometheus metrics (http://0.0.0.0:PORT/metrics); 0 disables them"},
    )
    leader_election_namespace: str = field(
        default="",
        metadata={"env": "HP_LEADER_ELECTION_NAMESPACE",
                  "help": "namespace of the Lease that elects the one active replica; empty: no election "
                          "(run one replica)"},
    )
    leader_election_name: str = field(
        default="hybridplace-operator",
        metadata={"env": "HP_LEADER_ELECTION_NAME",
                  "help": "name of that Lease: one per operator installation (the chart uses the release's "
                          "full name, so two releases in one namespace do not share it)"},
    )

    def __post_init__(self) -> None:
        """Refuse settings the operator cannot work with, naming the flag's variable."""
        if self.prometheus_url and not self.prometheus_url.startswith(("http://", "https://")):
            raise ValueError(f"--prometheus-url (HP_PROMETHEUS_URL) is {self.prometheus_url!r}; it must be "
                             "an http:// or https:// URL, or empty")
        if self.prometheus_ca_file and not Path(self.prometheus_ca_file).is_file():
            raise ValueError(f"--prometheus-ca-file (HP_PROMETHEUS_CA_FILE) is {self.prometheus_ca_file!r}; it must "
                             "be a readable PEM file, or empty")
        if self.default_gateway and not _GATEWAY.match(self.default_gateway):
            raise ValueError(f"--default-gateway (HP_DEFAULT_GATEWAY) is {self.default_gateway!r}; it must be "
                             "namespace/name or name (DNS labels), or empty")
        if not _LEASE_NAME.match(self.leader_election_name):
            raise ValueError(f"--leader-election-name (HP_LEADER_ELECTION_NAME) is {self.leader_election_name!r}; "
                             "it must be a Lease name: lower-case letters, digits, '-' and '.', at most 253")
        for f in fields(self):
            if f.name not in LIMITS:
                continue
            value, (low, high) = getattr(self, f.name), LIMITS[f.name]
            if not math.isfinite(value) or value < low or value > high:
                bound = f"between {low} and {high}"
                flag = "--" + f.name.replace("_", "-")
                shown = value if isinstance(value, int) else f"{value:g}"
                raise ValueError(f"{flag} ({f.metadata['env']}) is {shown}; it must be {bound}")

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Environment first, then explicit overrides (CLI flags) where not None."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = _convert(f.type, raw, f"environment variable {f.metadata['env']} "
                                                       f"(--{f.name.replace('_', '-')})")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def image_for(self, accelerator: str) -> str:
        return self.worker_image_gpu if accelerator == "nvidia-gpu" else self.worker_image_cpu


def convert_setting(name: str, raw: str) -> Any:
    """A flag's text as its setting's type (a comma-separated list for a tuple), or ValueError
    naming the flag and its environment variable."""
    f = next(f for f in fields(Settings) if f.name == name)
    return _convert(f.type, raw, f"--{name.replace('_', '-')} ({f.metadata['env']})")


def _convert(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if "tuple" in kind:
            return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))  # each once
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{name}: {raw!r} is not a valid {kind}") from None
    return raw


__all__ = ["LIMITS", "Settings", "DEFAULT_IMAGE_CPU", "DEFAULT_IMAGE_GPU", "convert_setting"]
