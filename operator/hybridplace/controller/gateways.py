"""Whether a split can be weighted here: the Gateway API served, and the Gateway named found.

Both answers are remembered for a while (settings.gateway_cache_seconds): every reconcile of a
deployment with a gateway asks, and the answer changes only when CRDs or Gateways come and go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..builders.routing import GATEWAY_GROUP, GATEWAY_VERSION, GatewayTarget, Routing
from .kube import ApiError, Kube

GROUP_VERSION = f"{GATEWAY_GROUP}/{GATEWAY_VERSION}"


class GatewayLookup:
    """Answers `routing(target, source)` from the API server, cached for `ttl_s` seconds.

    A 404 means absent; a 403 (the operator may not read it) is reported like an absence, with
    the reason; anything transient (no answer, 429, 5xx) raises, so the reconcile is retried
    with backoff rather than a split being narrowed on a blip."""

    def __init__(self, kube: Kube, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.kube = kube
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._served: tuple[float, str | None] | None = None  # (when, why not served or None)
        self._gateways: dict[tuple[str, str], tuple[float, str | None]] = {}

    def routing(self, target: GatewayTarget | None, source: str = "spec.serving.gateway") -> Routing:
        if target is None:
            return Routing()
        why = self._why_not_served()
        if why is not None:
            return Routing(why_not=f"{source} names {target.describe()}, but {why}", problem=True)
        why = self._why_no_gateway(target)
        if why is not None:
            return Routing(why_not=f"{source} names {target.describe()}, which {why}", problem=True)
        return Routing(gateway=target, why_not="")

    def _fresh(self, entry: tuple[float, str | None] | None) -> bool:
        return entry is not None and self.clock() - entry[0] < self.ttl_s

    def _why_not_served(self) -> str | None:
        with self._lock:
            if self._fresh(self._served):
                assert self._served is not None
                return self._served[1]
        try:
            resources = self.kube.resources_served(GROUP_VERSION)
            if resources is None:
                why = f"the cluster does not serve the Gateway API ({GROUP_VERSION}: its CRDs are not installed)"
            elif "httproutes" not in resources:
                why = (f"the cluster's Gateway API ({GROUP_VERSION}) has no HTTPRoute "
                       "(install the standard channel CRDs)")
            else:
                why = None
        except ApiError as err:
            if err.transient:
                raise
            why = f"the API server refused to say whether it serves the Gateway API: {err.status} {err.reason}"
        with self._lock:
            self._served = (self.clock(), why)
        return why

    def _why_no_gateway(self, target: GatewayTarget) -> str | None:
        key = (target.namespace, target.name)
        with self._lock:
            entry = self._gateways.get(key)
            if self._fresh(entry):
                assert entry is not None
                return entry[1]
        try:
            found = self.kube.get("Gateway", target.namespace, target.name)
            why = None if found is not None else "does not exist"
        except ApiError as err:
            if err.transient:
                raise
            why = f"the operator cannot read: {err.status} {err.reason}: {err.message[:200]}"
        with self._lock:
            self._gateways[key] = (self.clock(), why)
        return why

    def forget(self) -> None:
        """Ask again at the next reconcile (after a refused HTTPRoute, for example)."""
        with self._lock:
            self._served = None
            self._gateways.clear()
