"""One active operator: leader election with a coordination.k8s.io Lease, as client-go's
leaderelection does, so that two replicas never both act.

Every replica watches and keeps its cache warm; only the holder of the Lease reconciles. The
holder renews the Lease every `renew_seconds`; another replica takes it over only once it has
seen the Lease unchanged for `lease_seconds`, timed on its own monotonic clock from when it saw
the last change (as client-go does), so clock skew between nodes cannot make a fresh Lease look
expired. A replica that fails to renew stops reconciling at once, and one whose renewal hangs
(an API server that accepts and never answers) stops at its renew deadline, `renew_deadline`
seconds after the start of its last successful renewal, which comes before the Lease can expire:
so two never act together (client-go's renewDeadline).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .kube import ApiError, Kube

log = logging.getLogger("hybridplace")


def _micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leadership:
    """Whether this replica may act, as a threading.Event that also lapses: a renewal sets it
    until a deadline, and past that it reads as clear even if no one cleared it (the thread
    that would is stuck in a call that hangs)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._until = 0.0
        self._held = threading.Event()

    def hold_until(self, until: float) -> None:
        self._until = until
        self._held.set()

    def clear(self) -> None:
        self._held.clear()

    def is_set(self) -> bool:
        return self._held.is_set() and self._clock() < self._until

    def wait(self, timeout: float) -> bool:
        """Block until held (True) or `timeout` seconds passed (False)."""
        end = time.monotonic() + timeout
        while not self.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._held.is_set():  # lapsed: no Event says when a late renewal succeeds
                time.sleep(min(left, 0.1))
            else:
                self._held.wait(left)
        return True


class LeaderElector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        identity: str,
        *,
        name: str = "hybridplace-operator",
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
        renew_deadline: float | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        """`renew_deadline`: how long after the start of its last successful renewal this replica
        still acts (default two thirds of `lease_seconds`); it must lie between `renew_seconds`
        and `lease_seconds`."""
        # Its calls wait at most one renew interval: a renewal that hangs for the client's own
        # read timeout (a minute) would leave no replica reconciling for that long; given up
        # sooner, the next renewal comes before the deadline.
        self.kube = kube.with_timeout((min(kube.timeout[0], renew_seconds), min(kube.timeout[1], renew_seconds)))
        self._releasing_kube = kube  # giving the Lease up, once, at stop: no renewal is due then
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.clock = clock
        self.renew_deadline = lease_seconds * 2 / 3 if renew_deadline is None else renew_deadline
        if not renew_seconds < self.renew_deadline < lease_seconds:
            raise ValueError(f"leader election: renew every {renew_seconds:g} s with a deadline of "
                             f"{self.renew_deadline:g} s and a Lease of {lease_seconds:g} s; need "
                             "renew < deadline < lease")
        self._monotonic = monotonic
        self.leading = Leadership(monotonic)
        self._observed: tuple[Any, ...] | None = None  # the Lease as last seen, and when (monotonic)
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop, and give the Lease up if held, so a standby takes over at once."""
        self._stop.set()
        was_leading = self.leading.is_set()
        self.leading.clear()  # stop acting at once
        self._thread.join(timeout=10)
        if self.leading.is_set():  # a renewal in flight took or kept the Lease meanwhile
            was_leading = True
            self.leading.clear()
        if was_leading:
            try:
                lease = self._releasing_kube.get("Lease", self.namespace, self.name)
                if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                    self._releasing_kube.replace({**lease, "spec": {**lease["spec"], "holderIdentity": None}})
            except ApiError as err:
                log.warning("leader election: could not give the Lease up: %s", err)

    def _run(self) -> None:
        was_leading = False
        while not self._stop.is_set():
            started = self._monotonic()  # the renewTime written is the clock at this moment
            try:
                leading = self.try_acquire_or_renew()
            except Exception as err:  # noqa: BLE001 - the election must outlive any one failure
                log.warning("leader election: %s", err, exc_info=not isinstance(err, ApiError))
                leading = False
            if self._stop.is_set():  # stopped during the call: stop() gives the Lease up
                break
            if leading:
                self.leading.hold_until(started + self.renew_deadline)
            else:
                self.leading.clear()
            if leading and not was_leading:
                log.info("leader election: %s leads; reconciling", self.identity)
            elif not leading and was_leading:
                log.warning("leader election: %s no longer leads; reconciling stops", self.identity)
            was_leading = leading
            self._stop.wait(self.renew_seconds)

    def try_acquire_or_renew(self) -> bool:
        """One step: take or renew the Lease if it is free, ours, or expired; True when ours."""
        now = self.clock()
        lease = self.kube.get("Lease", self.namespace, self.name)
        spec_now = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_seconds),
            "renewTime": _micro(now),
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {**spec_now, "acquireTime": _micro(now), "leaseTransitions": 0},
            }
            return self.kube.create(body) is not None  # None: another replica created it first
        spec: dict[str, Any] = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        record = (holder, spec.get("renewTime"), lease["metadata"].get("resourceVersion"))
        if record != self._observed:
            self._observed, self._observed_at = record, self._monotonic()
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        if holder and holder != self.identity and self._monotonic() < self._observed_at + duration:
            return False  # held by another replica that renewed it within its duration, as seen here
        new_spec = {**spec, **spec_now}
        if holder != self.identity:
            new_spec["acquireTime"] = _micro(now)
            new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        try:
            # A replace with the read resourceVersion: of two replicas taking over, one wins.
            self.kube.replace({**lease, "spec": new_spec})
        except ApiError as err:
            if err.status == 409:
                return False
            raise
        return True
