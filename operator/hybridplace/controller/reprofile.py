"""When a pool's ModelProfile must be measured again, and why: pure functions, no I/O.

A profile is re-measured when (docs/api.md, "Re-profiling"):

- it is older than its max age (`spec.benchmark.maxAge`, else the pool's `spec.profileMaxAge`,
  else the operator's `--profile-max-age-seconds`; an imported profile only by one set on the
  InferenceDeployment or the pool: the operator's default never throws away measurements it
  may not be able to repeat, such as a GPU profile imported into a cluster without GPUs);
- it was measured with other settings than any InferenceDeployment of its model now asks for
  (its `hybridplace.io/benchmark-key` label: batch sizes, concurrency, duration, engine, search,
  serving image), or with another worker image than the operator's for the pool;
- the node type it was measured on (`spec.device.instanceType`, `gpuProduct`) is no longer
  among the pool's ready nodes';
- calibration (observed over predicted latency) has stayed outside [0.67, 1.5] for longer
  than a window, counted from when the profile was measured (`CalibrationReading`).

The old profile keeps serving decisions until the new one is recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..api.duration import age_seconds
from ..api.models import HardwarePool, InferenceDeployment, ModelProfile
from ..builders import names
from ..placement.calibration import CalibrationPolicy, reprofile_window

# The band calibration times its leaving by (one definition: placement/calibration.py).
CALIBRATION_LOW, CALIBRATION_HIGH = CalibrationPolicy.reprofile_low, CalibrationPolicy.reprofile_high
#: How long calibration must stay outside the band before the pool is measured again, seconds.
CALIBRATION_WINDOW_S = 600.0


@dataclass(frozen=True)
class CalibrationReading:
    """One pool's calibration for this InferenceDeployment (calibration itself fills it).

    ratio: observed over predicted latency at the SLO's percentile (smoothed).
    outside_since: when (epoch seconds) it last left [CALIBRATION_LOW, CALIBRATION_HIGH] and has
    stayed out since; None while it is inside.
    remeasured: times the pool was measured again while it stayed outside (each doubles the
    wait for the next: calibration.reprofile_window)."""

    ratio: float
    outside_since: float | None
    remeasured: int = 0


@dataclass(frozen=True)
class NodeTypes:
    """The instance types and GPU products of a pool's ready nodes (their labels)."""

    instance_types: frozenset[str] = frozenset()
    gpu_products: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ReprofileInputs:
    """What the triggers read besides the spec and the profile. `wanted_keys`: the benchmark
    keys of every InferenceDeployment of this model in the namespace (None: only this one's);
    `node_types` and `calibration` by pool name."""

    wanted_keys: frozenset[str] | None = None
    node_types: Mapping[str, NodeTypes] = field(default_factory=dict)
    calibration: Mapping[str, CalibrationReading] = field(default_factory=dict)
    calibration_window_s: float = CALIBRATION_WINDOW_S


@dataclass(frozen=True)
class MaxAge:
    seconds: float  # 0: never
    source: str  # where it is set, for messages
    explicit: bool  # set on the InferenceDeployment or the pool, not the operator's default


def max_age(infd: InferenceDeployment, pool: HardwarePool, default_s: float) -> MaxAge:
    """The max age of `infd`'s profiles on `pool`: the spec's, else the pool's, else the default."""
    if infd.spec.benchmark.max_age is not None:
        return MaxAge(age_seconds(infd.spec.benchmark.max_age), "spec.benchmark.maxAge", True)
    if pool.spec.profile_max_age is not None:
        return MaxAge(age_seconds(pool.spec.profile_max_age), f"HardwarePool {pool.name} spec.profileMaxAge",
                      True)
    return MaxAge(default_s, "the operator's --profile-max-age-seconds", False)


def epoch(text: str | None) -> float | None:
    """An RFC 3339 time as epoch seconds; None when absent or unreadable."""
    if not text:
        return None
    try:
        found = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (found if found.tzinfo else found.replace(tzinfo=dt.UTC)).timestamp()


def _seconds(s: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size and s % size == 0:
            return f"{s / size:g}{unit}"
    return f"{s:g}s"


def age_due_in(profile: ModelProfile, now: float, age: MaxAge) -> float | None:
    """Seconds until `profile` is too old (<= 0: it is); None when age never re-measures it."""
    measured = epoch(profile.spec.measured_at)
    if age.seconds <= 0 or measured is None or (profile.spec.provenance == "imported" and not age.explicit):
        return None
    return measured + age.seconds - now


def reprofile_reason(
    profile: ModelProfile,
    *,
    now: float,
    age: MaxAge,
    key: str,
    worker_image: str,
    inputs: ReprofileInputs,
) -> str | None:
    """Why `profile` (the one used for its pool) must be measured again, or None. `key`: this
    InferenceDeployment's benchmark key; `worker_image`: the operator's image for the pool."""
    name, pool = profile.metadata.name, profile.spec.pool
    reasons: list[str] = []
    due = age_due_in(profile, now, age)
    if due is not None and due <= 0:
        reasons.append(f"ModelProfile {name} was measured at {profile.spec.measured_at}, more than "
                       f"{_seconds(age.seconds)} ago ({age.source})")
    if profile.spec.provenance == "measured":
        labels = profile.metadata.labels or {}
        had = labels.get(names.LABEL_BENCHMARK_KEY)
        wanted = inputs.wanted_keys if inputs.wanted_keys is not None else frozenset({key})
        if had and had not in wanted | {key}:
            reasons.append(f"the benchmark settings changed (ModelProfile {name} has benchmark key {had}, "
                           f"spec.benchmark and spec.serving.image now give {key})")
        image = (profile.metadata.annotations or {}).get(names.ANNOTATION_WORKER_IMAGE)
        if image and image != worker_image:
            reasons.append(f"the worker image changed (measured with {image}, the operator now uses {worker_image})")
    device = profile.spec.device
    types = inputs.node_types.get(pool)
    if device is not None and types is not None:
        if device.instance_type and types.instance_types and device.instance_type not in types.instance_types:
            reasons.append(f"the node type changed (measured on instance type {device.instance_type}; the pool's "
                           f"ready nodes are {', '.join(sorted(types.instance_types))})")
        if device.gpu_product and types.gpu_products and device.gpu_product not in types.gpu_products:
            reasons.append(f"the GPU changed (measured on {device.gpu_product}; the pool's ready nodes have "
                           f"{', '.join(sorted(types.gpu_products))})")
    reading = inputs.calibration.get(pool)
    if reading is not None and reading.outside_since is not None \
            and not CALIBRATION_LOW <= reading.ratio <= CALIBRATION_HIGH:
        # Counted from the later of leaving the band and measuring: observations before this
        # profile existed say nothing about it (and a fresh profile is not measured again at once).
        since = max(reading.outside_since, epoch(profile.spec.measured_at) or reading.outside_since)
        window = reprofile_window(inputs.calibration_window_s, reading.remeasured)
        if now - since >= window:
            again = (f", {reading.remeasured} re-measurement(s) ago too (each doubles the wait)"
                     if reading.remeasured else "")
            reasons.append(f"calibration {reading.ratio:.3g} (observed over predicted latency) has been outside "
                           f"[{CALIBRATION_LOW}, {CALIBRATION_HIGH}] for over {_seconds(window)}{again}")
    return "; ".join(reasons) or None
