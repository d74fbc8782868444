"""Calibration as a pure function, with a fake clock: warm-up left out, too few requests left
out, the first window taken whole, later ones smoothed, clamped, each observation once, and the
re-profiling band."""

import pytest
from hybridplace.placement.calibration import (
    Calibration,
    CalibrationPolicy,
    CalibrationSample,
    calibrate,
    skip_reason,
    worth_writing,
)

POLICY = CalibrationPolicy(warmup_s=60.0)  # alpha 0.3, clamp [0.5, 4], 100 requests

def sample(at, observed=120.0, predicted=60.0, rate=30.0, per_replica=30.0, window=20.0):
    return CalibrationSample(at=at, observed_ms=observed, predicted_ms=predicted, rate_rps=rate,
                             per_replica_rps=per_replica, window_s=window)

def test_the_first_window_after_warm_up_calibrates_whole():
    c = calibrate(POLICY, None, "cpu", sample(at=100.0), ready_since=0.0)
    assert c.ratio == pytest.approx(2.0) and c.samples == 1 and c.sampled_at == 100.0
    assert (c.observed_ms, c.predicted_ms, c.per_replica_rps) == (120.0, 60.0, 30.0)

def test_warm_up_and_replicas_not_ready_are_left_out():
    assert calibrate(POLICY, None, "cpu", sample(at=100.0), ready_since=50.0) is None  # Ready 50 s of 60
    assert "warming up" in skip_reason(POLICY, sample(at=100.0), ready_since=50.0)
    assert calibrate(POLICY, None, "cpu", sample(at=100.0), ready_since=None) is None
    assert calibrate(POLICY, None, "cpu", sample(at=110.0), ready_since=50.0) is not None

@pytest.mark.parametrize("bad", [
    {"rate": 4.0, "per_replica": 4.0},  # 80 requests in the window: fewer than 100
    {"observed": None}, {"predicted": None}, {"observed": float("nan")}, {"predicted": 0.0}, {"rate": None},
])
def test_windows_without_enough_requests_or_figures_are_left_out(bad):
    previous = calibrate(POLICY, None, "cpu", sample(at=100.0), ready_since=0.0)
    assert calibrate(POLICY, previous, "cpu", sample(at=120.0, **bad), ready_since=0.0) is previous
    assert skip_reason(POLICY, sample(at=120.0, **bad), ready_since=0.0) is not None

def test_later_windows_are_smoothed_on_the_log_and_each_is_taken_once():
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=60.0), ready_since=0.0)
    assert c.ratio == pytest.approx(1.0)
    c = calibrate(POLICY, c, "cpu", sample(at=120.0, observed=120.0), ready_since=0.0)
    assert c.ratio == pytest.approx(2 ** 0.3) and c.samples == 2  # a third of the way, in log terms
    again = calibrate(POLICY, c, "cpu", sample(at=120.0, observed=240.0), ready_since=0.0)
    assert again is c  # the same observation again (another reconcile): not counted twice
    for i in range(20):
        c = calibrate(POLICY, c, "cpu", sample(at=140.0 + 20 * i, observed=120.0), ready_since=0.0)
    assert c.ratio == pytest.approx(2.0, rel=0.01)

def test_the_ratio_is_clamped():
    assert calibrate(POLICY, None, "cpu", sample(at=100.0, observed=6000.0), ready_since=0.0).ratio == 4.0
    assert calibrate(POLICY, None, "cpu", sample(at=100.0, observed=6.0), ready_since=0.0).ratio == 0.5

def test_outside_the_reprofiling_band_is_timed_from_when_it_left():
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=120.0), ready_since=0.0)
    assert c.outside_since == 100.0
    c = calibrate(POLICY, c, "cpu", sample(at=120.0, observed=120.0), ready_since=0.0)
    assert c.outside_since == 100.0  # still the time it left (the trigger: controller/reprofile.py)
    back = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=66.0), ready_since=0.0)
    assert back.outside_since is None

def test_small_moves_are_not_written_to_status_but_band_crossings_and_old_ones_are():
    old = Calibration("cpu", 2.0, 120.0, 60.0, 30.0, 3, 100.0, outside_since=50.0)
    assert not worth_writing(old, Calibration("cpu", 2.04, 121.0, 60.0, 30.0, 4, 120.0, outside_since=50.0))
    assert worth_writing(old, Calibration("cpu", 2.2, 130.0, 60.0, 30.0, 4, 120.0, outside_since=50.0))
    assert worth_writing(old, Calibration("cpu", 2.0, 120.0, 60.0, 30.0, 4, 400.0, outside_since=50.0))
    assert worth_writing(None, old) and not worth_writing(old, None) and not worth_writing(old, old)
    inside = Calibration("cpu", 1.49, 90.0, 60.0, 30.0, 4, 120.0)
    assert worth_writing(Calibration("cpu", 1.51, 90.0, 60.0, 30.0, 3, 100.0, outside_since=90.0), inside)


def test_a_higher_ratio_is_adopted_at_once_a_lower_one_only_after_the_hold():
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=120.0), ready_since=0.0, hold_s=60.0)
    assert c.ratio == pytest.approx(2.0)
    up = calibrate(POLICY, c, "cpu", sample(at=120.0, observed=240.0), ready_since=0.0, hold_s=60.0)
    assert up.ratio > c.ratio and up.lower_since is None
    low = up
    for t in (140.0, 160.0, 180.0):  # lower for 40 s of 60: held
        low = calibrate(POLICY, low, "cpu", sample(at=t, observed=60.0), ready_since=0.0, hold_s=60.0)
        assert low.ratio == up.ratio and low.lower_since == 140.0
    back = calibrate(POLICY, low, "cpu", sample(at=190.0, observed=480.0), ready_since=0.0, hold_s=60.0)
    assert back.lower_since is None and back.ratio > up.ratio  # one higher sample: the hold starts over
    low = back
    for t in (200.0, 220.0, 240.0, 260.0):
        low = calibrate(POLICY, low, "cpu", sample(at=t, observed=60.0), ready_since=0.0, hold_s=60.0)
    assert low.ratio < back.ratio and low.lower_since == 200.0  # lower for 60 s: it falls
    lower = calibrate(POLICY, low, "cpu", sample(at=280.0, observed=60.0), ready_since=0.0, hold_s=60.0)
    assert lower.ratio < low.ratio  # and keeps falling while the samples stay lower


def test_a_first_ratio_below_one_waits_for_the_hold_too():
    """Uncalibrated is 1.0: a model found pessimistic takes replicas away only after the hold,
    as a lower load would."""
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=30.0), ready_since=0.0, hold_s=60.0)
    assert c.ratio == 1.0 and c.lower_since == 100.0
    for t in (120.0, 140.0):
        c = calibrate(POLICY, c, "cpu", sample(at=t, observed=30.0), ready_since=0.0, hold_s=60.0)
        assert c.ratio == 1.0
    c = calibrate(POLICY, c, "cpu", sample(at=160.0, observed=30.0), ready_since=0.0, hold_s=60.0)
    assert c.ratio < 1.0

def test_an_observation_is_taken_once_though_status_keeps_its_time_to_the_second():
    """status.calibration[].sampledAt is RFC 3339 to the second; an observation's time has a
    fraction. Read back, the stored calibration must still count that observation as taken in:
    else every reconcile until the next one smooths it in again (and counts it again)."""
    first = calibrate(POLICY, None, "cpu", sample(at=1000.6), ready_since=0.0)
    stored = Calibration(**{**first.__dict__, "sampled_at": 1000.0})  # as status gives it back
    assert calibrate(POLICY, stored, "cpu", sample(at=1000.6), ready_since=0.0) is stored
    lower = calibrate(POLICY, stored, "cpu", sample(at=2000.6, observed=60.0), ready_since=0.0, hold_s=0.0)
    again = Calibration(**{**lower.__dict__, "sampled_at": 2000.0})
    assert calibrate(POLICY, again, "cpu", sample(at=2000.6, observed=60.0), ready_since=0.0, hold_s=0.0) is again
    assert again.samples == 2 and again.ratio == pytest.approx(2.0 ** 0.7)  # smoothed once, not once a reconcile
    # The next observation (an interval later) is taken in.
    assert calibrate(POLICY, again, "cpu", sample(at=2005.1), ready_since=0.0).samples == 3


def test_a_lower_ratio_at_a_lower_load_per_replica_does_not_lower_it():
    # Set at 20 requests/s per replica (ratio 2); the replicas it added leave 13 each, where the
    # model errs less (1.2): that is no evidence of a lower ratio at 20, however long it lasts.
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=120.0, per_replica=20.0), ready_since=0.0, hold_s=60.0)
    assert c.ratio == pytest.approx(2.0)
    for t in range(120, 1000, 20):
        c = calibrate(POLICY, c, "cpu", sample(at=float(t), observed=72.0, per_replica=13.0), ready_since=0.0,
                      hold_s=60.0)
        assert c.ratio == pytest.approx(2.0) and c.lower_since is None and c.per_replica_rps == 20.0
    # At about the load it was set at (within 10%), the same lower ratio does lower it, after the hold.
    for t in range(1000, 1100, 20):
        c = calibrate(POLICY, c, "cpu", sample(at=float(t), observed=72.0, per_replica=18.5), ready_since=0.0,
                      hold_s=60.0)
    assert c.ratio < 2.0


def test_a_steady_load_does_not_flap_replicas_when_the_error_grows_with_the_load():
    """The model errs x1.2 at up to 15 requests/s per replica and x1.8 above; a steady 40
    requests/s on replicas that carry 30 each by the model. Ratio 1.8 gives 3 replicas (13.3
    each), where the ratio reads 1.2; lowering it on that would give 2 replicas (20 each, x1.8)
    and so on, every hold. It settles on 3."""
    import math

    policy = CalibrationPolicy()
    cal, replicas, ready, changes = None, None, 0.0, []
    for k in range(400):  # 100 minutes, a sample every 15 s
        t = 15.0 * k
        want = math.ceil(40.0 * (cal.ratio if cal else 1.0) / 30.0)
        if want != replicas:
            changes.append((t, want))
            replicas, ready = want, t  # the replicas changed: warm-up again
        per = 40.0 / replicas
        observed = 100.0 * (1.2 if per <= 15 else 1.8)
        new = calibrate(policy, cal, "p", CalibrationSample(t, observed, 100.0, 40.0, per, 20.0), ready, hold_s=300)
        if worth_writing(cal, new):
            cal = new
    assert [r for _, r in changes] == [2, 3], changes


def test_a_sample_at_a_lower_load_neither_lowers_the_ratio_nor_restarts_the_hold():
    # Set to 2 at 20 requests/s per replica; then ratio-1 samples, one in four at 17.5 (more than
    # 10% lower, the load's noise): those are skipped, the others lower it after the hold.
    c = calibrate(POLICY, None, "cpu", sample(at=100.0, observed=120.0, per_replica=20.0), ready_since=0.0, hold_s=60.0)
    for i, t in enumerate(range(120, 400, 20)):
        c = calibrate(POLICY, c, "cpu", sample(at=float(t), observed=60.0, per_replica=17.5 if i % 4 == 3 else 20.0),
                      ready_since=0.0, hold_s=60.0)
    assert c.ratio < 1.5 and c.lower_since == 120.0
