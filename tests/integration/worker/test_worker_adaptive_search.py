"""The adaptive search with the real CPU torch engine (issue 15, "Search time"): builtin mlp on a
10 x 3 grid (batch sizes x concurrency). Adaptive finishes in under a third of the grid's time,
and the placement decided from its profile is the grid's.

"The same decision" is checked on the same measurements: the adaptive search replayed over
the grid run's points (its ``measure`` reads them back) must reach the decision the full grid
reaches, within the knee (5%) of its replicas, rounded up (items/s within 5% of 64 replicas'
can need 68): the search passes over a larger batch or a
concurrency level that adds under the knee's items/s, by design (the property test holds the
search to 2% in 95% of 200 random curves; on one real grid a CI run of 2026-11-30 had the grid
at batch 512, 6.3 USD/h, and the search at 256, 6.5: 3.2%). Two real runs cannot be compared
that way on a shared 2-core
machine: mlp's batches take 0.1-1 ms, and two grid runs a minute apart decided 7 and 17 replicas
for the same load (the test prints a second grid run's and the real adaptive run's decisions
beside them, for the reader). On a loaded machine the grid's own medians are often not monotone
in batch size (a run descheduled for tens of ms), or a concurrency level's gain measured at one
batch size is not the gain at another (two cores: a 5% gain is noise). The search assumes
neither happens (it judges a level at one batch size); when the decisions differ and the grid
broke one of those assumptions, the test reports an expected failure naming the break, rather
than passing or failing on the machine's load. Decisions that differ on measurements that keep
both assumptions fail the test.
"""

from __future__ import annotations

import json
import math

import pytest
from hybridplace.placement import Pool, Profile, ProfilePoint, Request, solve
from hybridplace_worker.search import DEFAULT_KNEE, LESSER_LEVEL, NO_CONCURRENCY_GAIN, adaptive_search
from worker_support import FAST

BATCH_SIZES = "1,2,4,8,16,32,64,128,256,512"
CONCURRENCY = "1,2,4"
SLO_MS, PERCENTILE = 20.0, 95


def _bench(run_inprocess, search: str) -> dict:
    rc, doc, out = run_inprocess(
        [
            "bench",
            "--model",
            "builtin:mlp",
            "--batch-sizes",
            BATCH_SIZES,
            "--concurrency",
            CONCURRENCY,
            *FAST,
            "--search",
            search,
            "--slo-ms",
            f"{SLO_MS:g}",
            "--slo-percentile",
            str(PERCENTILE),
        ]
    )
    assert rc == 0, doc
    assert doc.get("search") == search
    return json.loads(out)


def _profile(full: dict) -> Profile:
    points = tuple(
        ProfilePoint(
            p["batchSize"],
            p["p50Ms"],
            p["p95Ms"],
            p["p99Ms"],
            concurrency=p["concurrency"],
            throughput_rps=p["throughputRps"],
            stable=p["stable"],
        )
        for p in full["points"]
    )
    skipped = tuple((b, c) for pairs in full["skipped"].values() for b, c in pairs)
    return Profile("cpu", points, skipped=skipped)


def _measuring_seconds(full: dict) -> float:
    # The time spent in points: each point's windows plus its warm-up (the worker reports the
    # windows' seconds; warm-up is the fixed FAST setting per point).
    return sum(sum(w["seconds"] for w in p["windows"]) + 0.05 for p in full["points"])


@pytest.mark.slow
def test_adaptive_takes_under_a_third_of_the_grid_s_time_for_the_same_decision(run_inprocess):
    grid = _bench(run_inprocess, "Grid")
    adaptive = _bench(run_inprocess, "Adaptive")
    again = _bench(run_inprocess, "Grid")  # the noise between two grid runs, for the reader

    assert len(grid["points"]) == 30 and grid["skipped"] == {}
    measured = {(p["batchSize"], p["concurrency"]) for p in adaptive["points"]}
    skipped = {(b, c) for pairs in adaptive["skipped"].values() for b, c in pairs}
    assert len(measured) + len(skipped) == 30 and not measured & skipped

    grid_s, adaptive_s = _measuring_seconds(grid), _measuring_seconds(adaptive)
    print(
        f"\ngrid: {len(grid['points'])} points, {grid_s:.1f} s measuring "
        f"({grid['elapsedSeconds']:.1f} s in all); adaptive: {len(measured)} points, "
        f"{adaptive_s:.1f} s ({adaptive['elapsedSeconds']:.1f} s); skipped "
        f"{ {r: len(v) for r, v in adaptive['skipped'].items()} }"
    )
    assert adaptive_s < grid_s / 3

    # The adaptive search replayed over the grid's own measurements.
    by_point = {(p["batchSize"], p["concurrency"]): p for p in grid["points"]}
    replay = adaptive_search(
        [int(b) for b in BATCH_SIZES.split(",")],
        [int(c) for c in CONCURRENCY.split(",")],
        lambda b, c: _Measured(by_point[(b, c)]),
        slo_ms=SLO_MS,
        percentile=PERCENTILE,
    )
    replayed = dict(grid, points=[by_point[k] for k in replay.measured], skipped=replay.skipped_by_reason())

    pools = [Pool("cpu", price_per_replica_hour=0.1)]
    for rps in (200.0, 10_000_000.0):  # one replica, and enough that one more is under 2%
        request = Request(SLO_MS, rps, PERCENTILE, concurrency_levels=(1, 2, 4), max_queue_delay_ms=2.0)
        by_grid = solve(request, pools, [_profile(grid)])
        by_replay = solve(request, pools, [_profile(replayed)])
        print(
            f"{rps:g} requests/s: grid {by_grid.message}; adaptive on the same measurements "
            f"{by_replay.message}; real adaptive run "
            f"{solve(request, pools, [_profile(adaptive)]).message}; second grid run "
            f"{solve(request, pools, [_profile(again)]).message}"
        )
        breaks = _inversions(grid) + _level_gain_shifts(by_point, replay, by_grid, by_replay)
        if breaks and (
            by_grid.feasible != by_replay.feasible
            or by_grid.feasible
            and abs(_replicas(by_replay) - _replicas(by_grid)) > math.ceil(DEFAULT_KNEE * _replicas(by_grid))
        ):
            # The search assumes service time rises with the batch size and that a level's gain
            # is the same at every batch size; the grid itself says otherwise here.
            pytest.xfail(
                f"the grid's own measurements break the search's assumptions ({breaks}): the "
                f"decisions differ, {by_replay.message} against {by_grid.message}"
            )
        assert by_grid.feasible == by_replay.feasible
        if by_grid.feasible:
            # The search's resolution is the knee: a point it passes over (past the knee, a level
            # without the knee's gain), or reads conservatively beside one, gives up less than
            # the knee's items/s.
            # Replicas are whole: items/s within the knee of the grid's can still need one more
            # replica than the knee's share of the grid's count (64 at the knee is 67.2, so 68).
            chosen = by_grid.placements[0]
            grid_n, replay_n = _replicas(by_grid), _replicas(by_replay)
            assert abs(replay_n - grid_n) <= math.ceil(DEFAULT_KNEE * grid_n), (
                f"{replay_n} replicas against the grid's {grid_n}; the grid's b={chosen.batch_size} "
                f"c={chosen.concurrency}: "
                f"{replay.skipped.get((chosen.batch_size, chosen.concurrency), 'measured')} in the search"
            )


def _replicas(decision) -> int:
    return sum(p.replicas for p in decision.placements)


def _inversions(full: dict) -> list[str]:
    """Where a larger batch size measured a median under half the smaller one's: noise, not the
    model (a batch never takes less than half the time of a smaller one)."""
    out = []
    for c in {p["concurrency"] for p in full["points"]}:
        curve = sorted((p["batchSize"], p["p50Ms"]) for p in full["points"] if p["concurrency"] == c)
        out += [
            f"c={c}: b={b0} {m0:.2g} ms, b={b1} {m1:.2g} ms"
            for (b0, m0), (b1, m1) in zip(curve, curve[1:], strict=False)
            if m1 < m0 / 2
        ]
    return out


def _level_gain_shifts(by_point: dict, replay, by_grid, by_replay) -> list[str]:
    """Where the grid chose a concurrency level the search judged at a smaller batch size, and
    that level's items/s gain over the search's level differs between the two batch sizes by
    more than the knee: the gain the search saw is not the gain the grid chose on."""
    if not (by_grid.feasible and by_replay.feasible):
        return []
    chosen, theirs = by_grid.placements[0], by_replay.placements[0]
    level, other = chosen.concurrency, theirs.concurrency
    if level == other or replay.skipped.get((chosen.batch_size, level)) not in (
        NO_CONCURRENCY_GAIN,
        LESSER_LEVEL,
    ):
        return []

    def gain(batch: int, c: int) -> float:
        return by_point[(batch, c)]["throughputRps"] / by_point[(batch, other)]["throughputRps"] - 1

    # The level the search judged it by: itself where it measured it, else the highest level
    # below it that it measured (a level without gain ends the climb, unmeasured above it).
    judged_level = level
    if not any(c == level for _, c in replay.measured):
        below = [c for _, c in replay.measured if c < level]
        if not below:
            return []
        judged_level = max(below)
    judged_at = max(b for b, c in replay.measured if c == judged_level)
    at_judged, at_chosen = gain(judged_at, judged_level), gain(chosen.batch_size, level)
    if abs(at_chosen - at_judged) <= DEFAULT_KNEE:
        return []
    return [
        f"c={level} over c={other}: {at_judged:+.0%} items/s at b={judged_at} (judged on c={judged_level}), "
        f"{at_chosen:+.0%} at b={chosen.batch_size}"
    ]


class _Measured:
    def __init__(self, point: dict) -> None:
        self.p50_ms, self.p95_ms, self.p99_ms = point["p50Ms"], point["p95Ms"], point["p99Ms"]
        self.throughput_rps = point["throughputRps"]
