"""Calibration: how far the latency model is from what Prometheus observes, per pool.

The ratio of the observed latency at the SLO's percentile to the model's prediction *at the
load that was observed* (requests/s per ready replica), smoothed and clamped, as the correction
factors of NVIDIA Dynamo's SLA planner are. The solver multiplies every prediction for the pool
by it (``Pool.latency_factor``), so replicas follow the corrected prediction, and the headroom
is left to be a safety margin rather than the model's cover.

A pure function of the previous calibration, one sample and the clock: no Prometheus, no
Kubernetes (tests/unit/placement/test_calibration.py, fake clock). Rules:

- **Enough samples.** A sample counts only when the window saw at least ``min_requests``
  requests on the pool (a percentile of a handful of requests is noise) and both latencies are
  known and positive.
- **No warm-up.** Only once the pool's replicas have been Ready, unchanged, for ``warmup_s``:
  Triton's latency summary spans about a minute, so right after a rollout or a change of
  replicas it still mixes in what the old replicas saw at the old load.
- **The first sample is taken whole** (one window calibrates); later ones are smoothed on the
  log of the ratio, weight ``alpha`` for the new one, so one odd window moves it only part way.
- **Clamped** to [``low``, ``high``]: a broken metric cannot send the replicas to zero or to
  the limit on its own.
- **Up at once, down after the hold** (``hold_s``, the deployment's scale-down delay), as the
  load is: a higher ratio is adopted at once (it means the SLO is at risk); a lower one only
  after every sample for ``hold_s`` has been lower (``lower_since``). The ratio depends on the
  load it is measured at where the model's queueing is off, so a ratio that fell as soon as
  more replicas lowered the load would take them away again: it would flap.
- Each observation is used once (``sampled_at``), however often the planner runs. Compared at
  whole seconds: ``status.calibration[].sampledAt`` keeps whole seconds (RFC 3339, as every
  time in status), while an observation's time has a fraction; observations are at least an
  interval (5 s or more) apart, so the second tells them apart.
- ``outside_since``: since when the ratio has been outside [``reprofile_low``,
  ``reprofile_high``], for the re-profiling trigger (the profile no longer describes the pool).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class CalibrationPolicy:
    alpha: float = 0.3
    low: float = 0.5
    high: float = 4.0
    warmup_s: float = 90.0
    min_requests: float = 100.0
    reprofile_low: float = 0.67
    reprofile_high: float = 1.5
    # A lower ratio counts towards lowering only from a sample within this fraction below the
    # load per replica the ratio was set at (see calibrate).
    load_tolerance: float = 0.1


@dataclass(frozen=True)
class CalibrationSample:
    """One observation window of one pool: the observed latency at the SLO's percentile, the
    model's prediction at the observed requests/s per ready replica, the pool's requests/s, the
    window's length and when it was taken (seconds)."""

    at: float
    observed_ms: float | None
    predicted_ms: float | None
    rate_rps: float | None
    per_replica_rps: float | None
    window_s: float


@dataclass(frozen=True)
class Calibration:
    """A pool's calibration: ``ratio`` (observed / predicted, smoothed and clamped), the last
    sample's figures, how many samples went in, when the last was taken, and since when the
    ratio has been outside the re-profiling band (None: inside)."""

    pool: str
    ratio: float
    observed_ms: float
    predicted_ms: float
    per_replica_rps: float
    samples: int
    sampled_at: float
    outside_since: float | None = None
    lower_since: float | None = None  # since when every sample has been below ``ratio``
    # Times the pool was measured again while this calibration stayed outside the band (the
    # ratio carried over to the new profile, reprofile.py): each doubles how long it must stay
    # outside before the next re-measurement, so a gap that measuring does not close (the model,
    # not the profile) does not re-benchmark the pool every window. 0 once back inside.
    remeasured: int = 0


def skip_reason(policy: CalibrationPolicy, sample: CalibrationSample, ready_since: float | None) -> str | None:
    """Why `sample` is not used (None: it is)."""
    if ready_since is None:
        return "the pool's replicas are not all Ready"
    if sample.at - ready_since < policy.warmup_s:
        return f"warming up: Ready for {max(sample.at - ready_since, 0):.0f} s of {policy.warmup_s:g}"
    for name in ("observed_ms", "predicted_ms", "rate_rps", "per_replica_rps"):
        value = getattr(sample, name)
        if value is None or not math.isfinite(value) or value <= 0:
            return f"no {name.replace('_', ' ')}"
    if sample.rate_rps * sample.window_s < policy.min_requests:
        return (f"too few requests: {sample.rate_rps * sample.window_s:.0f} in the {sample.window_s:g} s window, "
                f"{policy.min_requests:g} needed")
    return None


def calibrate(policy: CalibrationPolicy, previous: Calibration | None, pool: str, sample: CalibrationSample,
              ready_since: float | None, hold_s: float = 0.0) -> Calibration | None:
    """The pool's calibration after `sample` (`previous` when the sample is not used or was
    used already; None when there is none yet). `hold_s`: how long a lower ratio must last."""
    if previous is not None and _second(sample.at) <= _second(previous.sampled_at):
        return previous  # this observation is in already (stored to the second: compare seconds)
    if skip_reason(policy, sample, ready_since) is not None:
        return previous
    assert sample.observed_ms is not None and sample.predicted_ms is not None and sample.per_replica_rps is not None
    raw = sample.observed_ms / sample.predicted_ms
    if previous is None:  # uncalibrated is 1.0: a first ratio below it is a fall like any other
        smoothed, base, base_since = raw, 1.0, None
    else:
        smoothed = math.exp((1 - policy.alpha) * math.log(previous.ratio) + policy.alpha * math.log(raw))
        base, base_since = previous.ratio, previous.lower_since
    ratio = min(max(smoothed, policy.low), policy.high)
    lower_since = None
    figures: Calibration | CalibrationSample = sample
    if ratio < base:
        if previous is not None and previous.samples > 0 and \
                sample.per_replica_rps < previous.per_replica_rps * (1 - policy.load_tolerance):
            # The model's error grows with the load per replica, and the replicas this ratio
            # added are what lowered that load: a lower ratio at a lower load is no evidence of
            # a lower one at the load it was set at (taking it would remove those replicas, the
            # ratio would rise again, and so on). Held, with the figures it was set from, and
            # the hold's start kept: the sample says nothing either way.
            ratio, figures, lower_since = base, previous, base_since
        else:
            lower_since = base_since if base_since is not None else sample.at
            if sample.at - lower_since < hold_s:
                # Not yet: lower for less than the hold (then it follows each sample down). The
                # figures stay those it was set from, whose load the next samples are held to
                # (a ratio carried over from the old profile was set from none of the new one's).
                ratio = base
                if previous is not None and previous.samples > 0:
                    figures = previous
    outside = not (policy.reprofile_low <= ratio <= policy.reprofile_high)
    since = (previous.outside_since if previous is not None and previous.outside_since is not None else sample.at) \
        if outside else None
    return Calibration(pool=pool, ratio=ratio, observed_ms=figures.observed_ms, predicted_ms=figures.predicted_ms,
                       per_replica_rps=figures.per_replica_rps, samples=(previous.samples if previous else 0) + 1,
                       sampled_at=sample.at, outside_since=since, lower_since=lower_since,
                       remeasured=previous.remeasured if previous is not None and outside else 0)


def carried_over(calibration: Calibration, measured_at: float) -> Calibration:
    """``calibration`` of a pool just measured again (its new profile's ``measured_at``), as the
    new profile's starting point: the same ratio, so the replicas it justified stay until the
    new profile's own samples lower it (after the hold any lower ratio needs) instead of all at
    once; the re-profiling clock restarts (``remeasured`` counts it when it was running),
    ``sampled_at`` moves to ``measured_at``, so only later observations are taken in and a
    carried calibration is not carried twice, and ``samples`` is 0: none of the new profile yet,
    so its first samples may lower the ratio at whatever load the old ratio left per replica."""
    return dataclasses.replace(
        calibration, sampled_at=measured_at, outside_since=None, lower_since=None, samples=0,
        remeasured=calibration.remeasured + (1 if calibration.outside_since is not None else 0))


#: The most doublings of the re-profiling window (``remeasured``): 2**8 x 10 min is about 43 h.
MAX_REMEASURED_DOUBLINGS = 8


def reprofile_window(window_s: float, remeasured: int) -> float:
    """How long a calibration measured again ``remeasured`` times while outside the band must
    stay outside it before its pool is measured again."""
    return window_s * 2 ** min(max(remeasured, 0), MAX_REMEASURED_DOUBLINGS)


def _second(t: float) -> float:
    """`t` to the whole second, as status stores it (-inf stays -inf)."""
    return math.floor(t) if math.isfinite(t) else t


def worth_writing(old: Calibration | None, new: Calibration | None, change: float = 0.03,
                  refresh_s: float = 300.0) -> bool:
    """Whether `new` should replace `old` in status: the ratio moved by more than `change`,
    the re-profiling band was crossed, or the one stored is older than `refresh_s`. Else the
    stored one stands (and, being the smoothing's state, later samples start from it)."""
    if new is None or new is old:
        return False
    if old is None:
        return True
    if abs(math.log(new.ratio / old.ratio)) > math.log1p(change):
        return True
    if (old.outside_since is None) != (new.outside_since is None) or \
            (old.lower_since is None) != (new.lower_since is None):
        return True
    return new.sampled_at - old.sampled_at >= refresh_s

