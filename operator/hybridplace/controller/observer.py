"""The observation loop: every few seconds, what Prometheus shows of every InferenceDeployment
whose scaling mode observes (Operator, External), kept as a short history per deployment and
handed to the planner as an input. The loop does the I/O; deciding stays in the pure planner
(placement/scaling.py, controller/plan.py).

Four fleet-wide queries per tick (controller/observe.py), whatever the number of deployments.
A failed or empty query gives each deployment an unknown observation with the reason; the
thread logs (the first failure, then at most once a minute while it lasts, and the recovery),
counts (``hybridplace_observe_errors_total``) and carries on: one error never stops it. A tick's
queries are bounded (observe.TICK_BUDGET_S), and ``stalled`` tells a liveness probe whether the
thread still finishes its ticks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..placement.scaling import Sample
from .observe import DEFAULT_WINDOW, Observation, observation_from, serving_pools

log = logging.getLogger("hybridplace")
NsName = tuple[str, str]
OBSERVING_MODES = ("Operator", "External")
#: The CRD's bounds (crds/hybridplace.io_inferencedeployments.yaml): the longest scale-down delay
#: and the shortest interval. A deployment's history covers its own delay's window (a scale-down
#: needs every observation of it), so its length follows from its delay and interval, at most
#: what the longest delay at the shortest interval needs (about 19,200 samples).
MAX_DELAY_S = 86400.0
MIN_INTERVAL_S = 5.0
#: Observations of one deployment are at least this much less than its interval apart (`due`).
DUE_SLACK_S = 0.5
#: While Prometheus keeps failing, its failure is logged again at most this often, seconds.
LOG_EVERY_S = 60.0


def samples_for(keep_s: float, interval_s: float) -> int:
    """The samples `keep_s` of history holds at most, one per `interval_s` (less the slack)."""
    return math.ceil(keep_s / max(interval_s - DUE_SLACK_S, MIN_INTERVAL_S - DUE_SLACK_S)) + 2


#: The most samples kept per deployment, whatever its settings (the CRD's extremes).
MAX_SAMPLES = samples_for(MAX_DELAY_S + 3 * MIN_INTERVAL_S, MIN_INTERVAL_S)


@dataclass(frozen=True)
class Observed:
    """What the planner gets for one deployment: the history (oldest first), the latest
    observation (None before the first), when data was last seen, and whether a Prometheus is
    configured at all. ``now`` is the loop's clock (seconds)."""

    observing: bool
    history: tuple[Sample, ...] = ()
    latest: Observation | None = None
    last_seen: float | None = None
    now: float = 0.0
    window: str = DEFAULT_WINDOW  # what the rates and the queue wait are taken over


class ObservationStore:
    """Per-deployment history, thread-safe (written by the loop, read by reconcile threads)."""

    def __init__(self, observing: bool, clock: Callable[[], float] = time.time, window: str = DEFAULT_WINDOW):
        self.observing = observing
        self.clock = clock
        self.window = window
        self._lock = threading.Lock()
        self._history: dict[NsName, deque[Sample]] = {}
        self._latest: dict[NsName, Observation] = {}
        self._last_seen: dict[NsName, float] = {}
        self._last_run: dict[NsName, float] = {}

    def record(self, key: NsName, obs: Observation, keep_s: float, interval_s: float = MIN_INTERVAL_S) -> None:
        """Append `obs`; keep the last `keep_s` of history (observations `interval_s` apart)."""
        size = min(samples_for(keep_s, interval_s), MAX_SAMPLES)
        with self._lock:
            hist = self._history.get(key)
            if hist and obs.at < hist[-1].at:
                hist.clear()  # the clock stepped back: the old samples' times no longer compare
            if hist is None or hist.maxlen != size:  # new, or its delay or interval changed
                hist = self._history[key] = deque(hist or (), maxlen=size)
            hist.append(Sample(at=obs.at, rate_rps=obs.rate_rps, latency_ms=obs.latency_ms, queue_ms=obs.queue_ms))
            while hist and hist[0].at < obs.at - keep_s:
                hist.popleft()
            self._latest[key] = obs
            if obs.known:
                self._last_seen[key] = obs.at

    def due(self, key: NsName, interval_s: float, now: float) -> bool:
        with self._lock:
            # A clock stepped back (now before the last run) makes it due at once, not after
            # the step.
            if 0 <= now - self._last_run.get(key, float("-inf")) < interval_s - DUE_SLACK_S:
                return False
            self._last_run[key] = now
            return True

    def get(self, key: NsName) -> Observed:
        with self._lock:
            return Observed(
                observing=self.observing,
                history=tuple(self._history.get(key, ())),
                latest=self._latest.get(key),
                last_seen=self._last_seen.get(key),
                now=self.clock(),
                window=self.window,
            )

    def forget(self, keep: Iterable[NsName]) -> None:
        """Drop the history of deployments that no longer exist."""
        keep = set(keep)
        with self._lock:
            for table in (self._history, self._latest, self._last_seen, self._last_run):
                for key in [k for k in table if k not in keep]:
                    table.pop(key, None)


def _scaling(body: dict[str, Any]) -> tuple[str, float, float, int]:
    spec = body.get("spec") or {}
    scaling = spec.get("scaling") or {}
    return (str(scaling.get("mode", "Operator")), float(scaling.get("intervalSeconds", 15)),
            float(scaling.get("scaleDownDelaySeconds", 300)), int((spec.get("slo") or {}).get("percentile", 95)))


class ObservationLoop:
    """Ticks every ``tick_s``; observes the deployments whose interval has come; enqueues them.

    ``metrics`` (metrics.Metrics, optional) counts the ticks that queried, those that failed and
    their duration. ``monotonic`` times the ticks and the logging's pace (a test's clock)."""

    def __init__(self, query_all, store: ObservationStore, infds: Callable[[], dict[NsName, dict[str, Any]]],
                 enqueue: Callable[[NsName], None], *, tick_s: float = 1.0, metrics=None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.query_all = query_all  # window -> (figures by (namespace, name), error)
        self.store = store
        self.infds = infds
        self.enqueue = enqueue
        self.tick_s = tick_s
        self.window = store.window  # one window for the queries and what the planner is told
        self.metrics = metrics
        self.monotonic = monotonic
        self.errors = 0  # ticks that raised
        self.ticks = 0  # ticks that queried
        self.failed_ticks = 0  # ticks whose queries failed (every deployment's observation unknown)
        #: How long the last tick that queried took, seconds (None before the first).
        self.last_tick_s: float | None = None
        self._last_tick_end: float | None = None  # monotonic, any tick, raised or not
        self._due_by: float | None = None  # monotonic: when the thread's next tick should start
        self._failing_since: float | None = None
        self._failing_logged = 0.0
        self._failing_ticks = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._due_by = self.monotonic() + self.tick_s
        self._thread = threading.Thread(target=self._run, name="observe", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def last_tick_age_s(self) -> float | None:
        """Seconds since a tick last finished (None before the first)."""
        end = self._last_tick_end
        return None if end is None else self.monotonic() - end

    def stalled(self, max_s: float) -> bool:
        """True when the thread runs but its next tick is more than ``max_s`` overdue: a tick
        stuck for that long (a tick's queries take at most observe.TICK_BUDGET_S; the wait
        between ticks, up to a minute after errors, is not counted). False when no thread runs
        (``alive`` tells that)."""
        due = self._due_by
        return self.alive and due is not None and self.monotonic() - due > max_s

    def _run(self) -> None:
        backoff = self.tick_s
        while not self._stop.wait(backoff):
            try:
                self.run_once()
                backoff = self.tick_s
            except Exception:  # noqa: BLE001 - logged, counted, retried; never the end of the loop
                self.errors += 1
                backoff = min(60.0, backoff * 2)
                log.exception("observing Prometheus failed (%d so far); retrying in %.0f s", self.errors, backoff)
            self._due_by = self.monotonic() + backoff

    def run_once(self, now: float | None = None) -> list[NsName]:
        """One tick: observe every due deployment; returns their keys."""
        try:
            return self._tick(now)
        finally:
            self._last_tick_end = self.monotonic()

    def _tick(self, now: float | None) -> list[NsName]:
        now = self.store.clock() if now is None else now
        infds = self.infds()
        # Only observed deployments keep their history: one switched to Off keeps no stale
        # observation (and starts afresh if switched back).
        self.store.forget(k for k, body in infds.items() if _scaling(body)[0] in OBSERVING_MODES)
        due = []
        for key, body in infds.items():
            mode, interval, delay, percentile = _scaling(body)
            if mode in OBSERVING_MODES and self.store.due(key, interval, now):
                due.append((key, interval, delay, percentile, serving_pools(body)))
        if not due:
            return []
        self.ticks += 1
        started, failed = self.monotonic(), True  # until the tick has run to its end
        try:
            figures, error = self.query_all(self.window)
            self._note(error)
            for key, interval, delay, percentile, serving in due:
                obs = observation_from(figures.get(key), percentile, now, error, serving=serving)
                self.store.record(key, obs, keep_s=delay + 3 * interval, interval_s=interval)
                self.enqueue(key)
            failed = error is not None
        finally:
            self.last_tick_s = self.monotonic() - started
            if self.metrics is not None:
                self.metrics.observed(self.last_tick_s, failed)
        return [k for k, *_ in due]

    def _note(self, error: str | None) -> None:
        """Log a failed tick: the first of a run of failures, then at most once every LOG_EVERY_S
        while they last, and the recovery once."""
        t = self.monotonic()
        if error is None:
            if self._failing_since is not None:
                log.info("Prometheus answers again after %.0f s (%d failed ticks); observing resumes",
                         t - self._failing_since, self._failing_ticks)
                self._failing_since = None
            return
        self.failed_ticks += 1
        if self._failing_since is None:
            self._failing_since, self._failing_logged, self._failing_ticks = t, t, 1
            log.warning("observing Prometheus failed: %s; every observed deployment's load is unknown "
                        "until it answers", error)
            return
        self._failing_ticks += 1
        if t - self._failing_logged >= LOG_EVERY_S:
            self._failing_logged = t
            log.warning("observing Prometheus still fails, for %.0f s (%d ticks): %s",
                        t - self._failing_since, self._failing_ticks, error)
