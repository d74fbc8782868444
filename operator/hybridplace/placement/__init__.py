"""The placement engine: the cheapest placement of a model that meets its latency SLO.

Pure Python: no Kubernetes, kopf, pydantic or torch import (tests check it), so the operator,
the offline ``hybridplace recommend`` CLI and the benchmarks all run the same code.

- ``types``: the inputs (``Pool``, ``Profile``/``ProfilePoint``, ``Request``) and the answer
  (``Decision`` with ``Placement``s and ``Alternative``s; ``Decision.to_dict()`` is
  status.decision).
- ``latency``: ``predict_latency`` -- percentile latency of one replica under load, with
  dynamic batching and queueing -- and ``max_replica_load``, the most load a replica may take.
- ``simulate``: ``simulate_latency``, a discrete-event simulation of the same batcher, the
  reference the model is checked against.
- ``split``: ``cheapest_split``, exact replica counts per pool (hybrid splits included).
- ``solver``: ``solve(request, pools, profiles) -> Decision``.

docs/placement.md explains the model, its assumptions and the choice.
"""

from .latency import (
    LatencyPrediction,
    ServiceCurve,
    latency_cdf,
    max_replica_load,
    meets_slo,
    predict_latency,
)
from .simulate import SimulatedLatency, simulate_latency
from .solver import Configuration, best_configuration, solve
from .split import PoolCapacity, Split, cheapest_split, objective_values
from .types import (
    EVEN_SPREAD,
    MORE_ENERGY,
    MORE_EXPENSIVE,
    NO_PROFILE,
    NOT_ALLOWED,
    OVER_CAPACITY,
    OVER_SLO,
    PERCENTILES,
    PROFILE_FAILED,
    REASONS,
    ROUTINGS,
    SINGLE_POOL,
    WEIGHT_TOTAL,
    WEIGHTED,
    Alternative,
    Decision,
    Placement,
    Pool,
    Profile,
    ProfilePoint,
    Request,
    route_weights,
)

__all__ = [
    "EVEN_SPREAD",
    "ROUTINGS",
    "SINGLE_POOL",
    "WEIGHTED",
    "WEIGHT_TOTAL",
    "route_weights",
    "MORE_ENERGY",
    "MORE_EXPENSIVE",
    "NOT_ALLOWED",
    "NO_PROFILE",
    "OVER_CAPACITY",
    "OVER_SLO",
    "PERCENTILES",
    "PROFILE_FAILED",
    "REASONS",
    "Alternative",
    "Configuration",
    "Decision",
    "LatencyPrediction",
    "Placement",
    "Pool",
    "PoolCapacity",
    "Profile",
    "ProfilePoint",
    "Request",
    "ServiceCurve",
    "SimulatedLatency",
    "Split",
    "best_configuration",
    "cheapest_split",
    "latency_cdf",
    "max_replica_load",
    "meets_slo",
    "objective_values",
    "predict_latency",
    "simulate_latency",
    "solve",
]
