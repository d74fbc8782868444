"""Typed Python model of the hybridplace.io/v1alpha1 API.

The CRDs in crds/ are the source of truth; these classes mirror their structural schemas
(fields, types, enums, bounds, defaults) so that the offline CLI refuses what the API server
refuses. The CEL rules (x-kubernetes-validations) are mirrored separately in `rules.py`, with the
same messages. tests/unit/api/test_crd_drift.py fails when the two drift apart.

Field names are snake_case in Python and camelCase on the wire (aliases). Units are in the names:
Ms milliseconds, Rps requests per second, PerHour USD per hour, Watts watts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr
from pydantic.alias_generators import to_camel

from .quantity import is_quantity

GROUP = "hybridplace.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
RESOURCE_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Model(BaseModel):
    """Base: camelCase on the wire, unknown fields refused, no type coercion (like the server)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        strict=True,
        frozen=True,
        allow_inf_nan=False,  # JSON has neither; a YAML file may (.inf, .nan)
    )

    def to_dict(self) -> dict[str, Any]:
        """The object as the API server stores it: camelCase keys, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and len(value) > 64:
        raise ValueError("a resource quantity must have at most 64 characters")
    if not is_quantity(value):
        raise ValueError(f"{value!r} is not a resource quantity (for example 500m, 4, 16Gi)")
    return value


def _check_datetime(value: str) -> str:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an RFC 3339 date-time (for example 2026-11-23T18:00:00Z)"
        ) from None
    return value


def _unique(items: list[Any]) -> list[Any]:
    """x-kubernetes-list-type: set -- the server refuses duplicates."""
    for i, item in enumerate(items):
        if item in items[:i]:
            raise ValueError(f"duplicate value {item!r} at index {i}")
    return items


def _unique_by(*keys: str) -> AfterValidator:
    """x-kubernetes-list-type: map -- the server refuses two items with the same keys."""

    def check(items: list[Any]) -> list[Any]:
        seen: set[tuple[Any, ...]] = set()
        for i, item in enumerate(items):
            key = tuple(getattr(item, k) for k in keys)
            if key in seen:
                named = ", ".join(f"{to_camel(k)}={v!r}" for k, v in zip(keys, key, strict=True))
                raise ValueError(f"duplicate entry ({named}) at index {i}")
            seen.add(key)
        return items

    return AfterValidator(check)


Quantity = Annotated[StrictInt | StrictStr, AfterValidator(_check_quantity)]
DateTime = Annotated[StrictStr, AfterValidator(_check_datetime)]
Int32 = Annotated[StrictInt, Field(ge=-(2**31), le=2**31 - 1)]
ResourceMap = Annotated[dict[str, Quantity], Field(max_length=8)]


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads; the rest is kept as it is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class Condition(Model):
    """A Kubernetes condition (metav1.Condition)."""

    type: Annotated[StrictStr, Field(max_length=316, pattern=CONDITION_TYPE)]
    status: Literal["True", "False", "Unknown"]
    reason: Annotated[StrictStr, Field(min_length=1, max_length=1024, pattern=CONDITION_REASON)]
    message: Annotated[StrictStr, Field(max_length=32768)]
    observed_generation: Annotated[StrictInt, Field(ge=0)] | None = None
    last_transition_time: DateTime


Conditions = Annotated[list[Condition], Field(max_length=16), _unique_by("type")]


# --- HardwarePool -------------------------------------------------------------------------


class Accelerator(Model):
    type: Literal["cpu", "nvidia-gpu"]
    product: Annotated[StrictStr, Field(max_length=128)] | None = None
    resource_name: Annotated[StrictStr, Field(max_length=253, pattern=RESOURCE_NAME)] | None = None

    @property
    def gpu_resource(self) -> str:
        """The extended resource one GPU is requested by."""
        return self.resource_name or "nvidia.com/gpu"


TOLERATION_KEY = (r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]))?$")
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


class Toleration(Model):
    key: Annotated[StrictStr, Field(max_length=316, pattern=TOLERATION_KEY)] | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: Annotated[StrictStr, Field(max_length=63, pattern=LABEL_VALUE)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: StrictInt | None = None


class ReplicaResources(Model):
    requests: Annotated[dict[str, Quantity], Field(min_length=1, max_length=8)]
    limits: ResourceMap | None = None

    @property
    def effective_requests(self) -> dict[str, int | str]:
        """What a pod with these resources requests: Kubernetes takes a resource's limit as its
        request when only the limit is given."""
        return {**(self.limits or {}), **self.requests}


class Price(Model):
    per_node_hour: Annotated[float, Field(ge=0)] | None = None
    per_replica_hour: Annotated[float, Field(ge=0)] | None = None


class Power(Model):
    per_node_watts: Annotated[float, Field(ge=0)] | None = None
    per_replica_watts: Annotated[float, Field(ge=0)] | None = None


class HardwarePoolSpec(Model):
    accelerator: Accelerator
    node_selector: Annotated[
        dict[str, Annotated[StrictStr, Field(max_length=63)]], Field(min_length=1, max_length=16)
    ]
    tolerations: Annotated[list[Toleration], Field(max_length=16)] | None = None
    replica_resources: ReplicaResources
    node_allocatable: ResourceMap | None = None
    price: Price
    power: Power | None = None
    max_replicas: Annotated[Int32, Field(ge=1)] | None = None
    profile_max_age: StrictInt | StrictStr | None = None  # seconds or 90s/30m/12h/7d (api/duration.py)
    allowed_namespaces: Annotated[
        list[Annotated[StrictStr, Field(max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]],
        Field(max_length=64),
        AfterValidator(_unique),
    ] | None = None

    def allows(self, namespace: str | None) -> bool:
        """Whether InferenceDeployments of `namespace` may use this pool."""
        return not self.allowed_namespaces or namespace in self.allowed_namespaces


class HardwarePoolStatus(Model):
    observed_generation: StrictInt | None = None
    nodes: Int32 | None = None
    ready_nodes: Int32 | None = None
    replicas_per_node: Int32 | None = None
    capacity_replicas: Int32 | None = None
    free_replicas: Int32 | None = None
    conditions: Conditions | None = None


class HardwarePool(Model):
    """A pool of nodes the operator may place on (cluster-scoped)."""

    api_version: Literal["hybridplace.io/v1alpha1"] = API_VERSION
    kind: Literal["HardwarePool"] = "HardwarePool"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: HardwarePoolSpec
    status: HardwarePoolStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name or ""


# --- ModelProfile -------------------------------------------------------------------------


class ProfiledModel(Model):
    digest: Annotated[StrictStr, Field(pattern=DIGEST_PATTERN)]
    name: Annotated[StrictStr, Field(max_length=2048)] | None = None
    format: Literal["torchscript", "torch-export"] | None = None


class Device(Model):
    accelerator: Literal["cpu", "nvidia-gpu"] | None = None
    name: Annotated[StrictStr, Field(max_length=256)] | None = None
    node: Annotated[StrictStr, Field(max_length=253)] | None = None
    cores: Annotated[Int32, Field(ge=0)] | None = None
    threads: Annotated[Int32, Field(ge=0)] | None = None
    memory_mib: Annotated[StrictInt | None, Field(ge=0, alias="memoryMiB")] = None
    torch_version: Annotated[StrictStr, Field(max_length=64)] | None = None
    cuda_version: Annotated[StrictStr, Field(max_length=64)] | None = None
    power_watts: Annotated[float, Field(ge=0)] | None = None
    driver_version: Annotated[StrictStr, Field(max_length=64)] | None = None
    instance_type: Annotated[StrictStr, Field(max_length=63)] | None = None
    gpu_product: Annotated[StrictStr, Field(max_length=63)] | None = None


class ProfilePoint(Model):
    """Latency percentiles (ms) and throughput at one batch size and concurrency."""

    batch_size: Annotated[Int32, Field(ge=1, le=65536)]
    concurrency: Annotated[Int32, Field(ge=1, le=4096)] = 1
    # Bounded above (about 2.8 hours, a billion a second): no serving profile comes near, and
    # the latency model's arithmetic stays finite.
    p50_ms: Annotated[float, Field(gt=0, le=1e7)]
    p95_ms: Annotated[float, Field(gt=0, le=1e7)]
    p99_ms: Annotated[float, Field(gt=0, le=1e7)]
    throughput_rps: Annotated[float, Field(ge=0, le=1e9)] | None = None
    throughput_ips: Annotated[float, Field(ge=0, le=1e9)] | None = None
    spread: Annotated[float, Field(ge=0)] | None = None
    stable: bool = True


class SkippedPoint(Model):
    """A grid point an adaptive search did not measure, and why (see docs/worker.md)."""

    batch_size: Annotated[Int32, Field(ge=1, le=65536)]
    concurrency: Annotated[Int32, Field(ge=1, le=4096)]
    reason: Literal["BeyondSLO", "PastKnee", "BelowEdge", "NoConcurrencyGain", "LesserConcurrency",
                    "Budget"]


class ModelProfileSpec(Model):
    model: ProfiledModel
    pool: Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    engine: Literal["torch", "triton"] = "torch"
    device: Device | None = None
    worker_version: Annotated[StrictStr, Field(max_length=64)] | None = None
    measured_at: DateTime | None = None
    provenance: Literal["measured", "imported"]
    source: Annotated[StrictStr, Field(max_length=1024)] | None = None
    points: Annotated[
        list[ProfilePoint], Field(min_length=1, max_length=512), _unique_by("batch_size", "concurrency")
    ]
    search: Literal["Grid", "Adaptive"] | None = None
    skipped: Annotated[
        list[SkippedPoint], Field(max_length=512), _unique_by("batch_size", "concurrency")
    ] | None = None
    skipped_unlisted: Annotated[Int32, Field(ge=1)] | None = None
    request_overhead_ms: Annotated[float, Field(ge=0, le=60000)] | None = None


class ModelProfileStatus(Model):
    observed_generation: StrictInt | None = None
    point_count: Int32 | None = None
    conditions: Conditions | None = None


class ModelProfile(Model):
    """What was measured for one model digest on one pool (namespaced)."""

    api_version: Literal["hybridplace.io/v1alpha1"] = API_VERSION
    kind: Literal["ModelProfile"] = "ModelProfile"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ModelProfileSpec
    status: ModelProfileStatus | None = None


# --- InferenceDeployment ------------------------------------------------------------------


class ModelInput(Model):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    shape: Annotated[list[Annotated[StrictInt, Field(ge=1)]], Field(min_length=1, max_length=8)]
    dtype: Literal["float32", "float16", "int64", "int32"] = "float32"


class ModelSource(Model):
    builtin: Literal["mlp", "resnet", "transformer", "delay"] | None = None
    uri: Annotated[StrictStr, Field(max_length=2048, pattern=r"^(https?|file)://.+")] | None = None
    format: Literal["torchscript", "torch-export"] = "torchscript"
    digest: Annotated[StrictStr, Field(pattern=DIGEST_PATTERN)] | None = None
    inputs: Annotated[list[ModelInput], Field(max_length=8), _unique_by("name")] | None = None


class SLO(Model):
    percentile: Literal[50, 90, 95, 99] = 95
    latency_ms: Annotated[float, Field(gt=0, le=600000)]

    def describe(self) -> str:
        """Short form, for example p95<=50ms."""
        return f"p{self.percentile}<={self.latency_ms:g}ms"


class Load(Model):
    target_rps: Annotated[float, Field(gt=0, le=10_000_000)]
    min_replicas: Annotated[Int32, Field(ge=1)] = 1
    max_replicas: Annotated[Int32, Field(ge=1, le=10000)] = 20


class Scaling(Model):
    mode: Literal["Operator", "External", "Off"] = "Operator"
    interval_seconds: Annotated[Int32, Field(ge=5, le=3600)] = 15
    scale_down_delay_seconds: Annotated[Int32, Field(ge=5, le=86400)] = 300
    min_load_rps: Annotated[float, Field(ge=0, le=10_000_000)] = 0


class Placement(Model):
    pools: Annotated[
        list[Annotated[StrictStr, Field(max_length=253, pattern=DNS_SUBDOMAIN)]],
        Field(max_length=32),
        AfterValidator(_unique),
    ] | None = None
    objective: Literal["cost", "energy"] = "cost"
    allow_hybrid: bool = True
    mode: Literal["Apply", "Recommend"] = "Apply"
    headroom: Annotated[float, Field(ge=0, le=0.95)] = 0.1


class Benchmark(Model):
    batch_sizes: Annotated[
        list[Annotated[Int32, Field(ge=1, le=4096)]],
        Field(min_length=1, max_length=16),
        AfterValidator(_unique),
    ] = [1, 2, 4, 8, 16, 32]
    concurrency: Annotated[
        list[Annotated[Int32, Field(ge=1, le=256)]],
        Field(min_length=1, max_length=8),
        AfterValidator(_unique),
    ] = [1]
    duration_seconds: Annotated[float, Field(ge=0.1, le=600)] = 2
    budget_seconds: Annotated[Int32, Field(ge=30, le=86400)] = 900
    engine: Literal["torch", "triton"] = "torch"
    search: Literal["Grid", "Adaptive"] = "Adaptive"
    budget_points: Annotated[Int32, Field(ge=1, le=128)] | None = None
    budget_search_seconds: Annotated[float, Field(ge=1, le=86400)] | None = None
    max_age: StrictInt | StrictStr | None = None  # seconds or 90s/30m/12h/7d (api/duration.py)


# The Gateway API's own patterns (its Hostname, ObjectName, Namespace and SectionName types):
# what an HTTPRoute may carry, so a route is never one the API server must refuse.
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Hostname = Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=HOSTNAME_PATTERN)]


class GatewayRef(Model):
    """The Gateway API Gateway a split's HTTPRoute attaches to."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)]
    namespace: Annotated[StrictStr, Field(min_length=1, max_length=63, pattern=DNS_LABEL)] | None = None
    section_name: Annotated[StrictStr, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)] | None = None
    hostnames: Annotated[list[Hostname], Field(max_length=16)] | None = None


class Serving(Model):
    image: Annotated[StrictStr, Field(max_length=512)] | None = None
    port: Annotated[Int32, Field(ge=1024, le=65533)] = 8000
    max_queue_delay_ms: Annotated[float, Field(ge=0, le=1000)] = 2
    gateway: GatewayRef | None = None


class InferenceDeploymentSpec(Model):
    model: ModelSource
    slo: SLO
    load: Load
    scaling: Scaling = Field(default_factory=Scaling)
    placement: Placement = Field(default_factory=Placement)
    benchmark: Benchmark = Field(default_factory=Benchmark)
    serving: Serving = Field(default_factory=Serving)


class PoolProfileState(Model):
    pool: Annotated[StrictStr, Field(max_length=253)]
    name: Annotated[StrictStr, Field(max_length=253)] | None = None
    state: Literal["Measured", "Pending", "Failed", "Missing"]
    reason: Annotated[StrictStr, Field(max_length=128)] | None = None
    message: Annotated[StrictStr, Field(max_length=4096)] | None = None


class PlacementStatus(Model):
    pool: Annotated[StrictStr, Field(max_length=253)] | None = None
    replicas: Int32 | None = None
    batch_size: Int32 | None = None
    concurrency: Int32 | None = None
    share_rps: float | None = None
    weight: Int32 | None = None
    predicted_latency_ms: float | None = None
    utilisation: float | None = None
    cost_per_hour: float | None = None
    watts: float | None = None
    cost_per_million: float | None = None
    watt_hours_per_million: float | None = None


class AlternativeStatus(Model):
    pool: Annotated[StrictStr, Field(max_length=1024)] | None = None
    batch_size: Int32 | None = None
    replicas: Int32 | None = None
    predicted_latency_ms: float | None = None
    cost_per_hour: float | None = None
    watts: float | None = None
    reason: Annotated[StrictStr, Field(max_length=64)] | None = None
    message: Annotated[StrictStr, Field(max_length=1024)] | None = None


class DecisionStatus(Model):
    feasible: bool | None = None
    objective: Annotated[StrictStr, Field(max_length=16)] | None = None
    placements: Annotated[list[PlacementStatus], Field(max_length=64)] | None = None
    routing: Literal["Weighted", "EvenSpread", "SinglePool"] | None = None
    total_cost_per_hour: float | None = None
    total_watts: float | None = None
    cost_per_million: float | None = None
    watt_hours_per_million: float | None = None
    best_achievable_latency_ms: float | None = None
    best_achievable_pool: Annotated[StrictStr, Field(max_length=253)] | None = None
    best_achievable_batch_size: Int32 | None = None
    alternatives: Annotated[list[AlternativeStatus], Field(max_length=64)] | None = None
    decided_at: DateTime | None = None


class Summary(Model):
    pools: Annotated[StrictStr, Field(max_length=1024)] | None = None
    replicas: Int32 | None = None
    predicted_latency_ms: float | None = None
    slo: Annotated[StrictStr, Field(max_length=64)] | None = None
    cost_per_hour: float | None = None
    cost_per_million: float | None = None


class ObservedStatus(Model):
    requests_per_second: float | None = None
    latency_ms: float | None = None
    queue_ms: float | None = None
    percentile: Int32 | None = None
    window: Annotated[StrictStr, Field(max_length=32)] | None = None
    time: DateTime | None = None


class ScalingStatus(Model):
    mode: Annotated[StrictStr, Field(max_length=16)] | None = None
    load_rps: float | None = None
    action: Annotated[StrictStr, Field(max_length=16)] | None = None
    message: Annotated[StrictStr, Field(max_length=1024)] | None = None
    last_scale_time: DateTime | None = None


class ServingStatus(Model):
    pool: Annotated[StrictStr, Field(max_length=63)]
    deployment: Annotated[StrictStr, Field(max_length=63)] | None = None
    replicas: Int32 | None = None
    available_replicas: Int32 | None = None
    state: Annotated[StrictStr, Field(max_length=16)] | None = None
    ready_since: DateTime | None = None


class CalibrationStatus(Model):
    pool: Annotated[StrictStr, Field(max_length=63)]
    ratio: float
    observed_ms: float | None = None
    predicted_ms: float | None = None
    per_replica_rps: float | None = None
    samples: Int32 | None = None
    sampled_at: DateTime | None = None
    outside_since: DateTime | None = None
    lower_since: DateTime | None = None
    remeasured: Annotated[Int32, Field(ge=0)] | None = None


class InferenceDeploymentStatus(Model):
    observed: ObservedStatus | None = None
    serving: Annotated[list[ServingStatus], Field(max_length=64), _unique_by("pool")] | None = None
    calibration: Annotated[list[CalibrationStatus], Field(max_length=64), _unique_by("pool")] | None = None
    scaling: ScalingStatus | None = None
    observed_generation: StrictInt | None = None
    model_digest: Annotated[StrictStr, Field(max_length=71)] | None = None
    conditions: Conditions | None = None
    profiles: Annotated[list[PoolProfileState], Field(max_length=64), _unique_by("pool")] | None = None
    decision: DecisionStatus | None = None
    summary: Summary | None = None


class InferenceDeployment(Model):
    """A model to serve under a latency SLO at an expected load (namespaced)."""

    api_version: Literal["hybridplace.io/v1alpha1"] = API_VERSION
    kind: Literal["InferenceDeployment"] = "InferenceDeployment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: InferenceDeploymentSpec
    status: InferenceDeploymentStatus | None = None


KINDS: dict[str, type[Model]] = {
    "HardwarePool": HardwarePool,
    "ModelProfile": ModelProfile,
    "InferenceDeployment": InferenceDeployment,
}
