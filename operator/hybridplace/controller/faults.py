"""Crash points for fault-injection tests, off unless HP_CRASH_AT names one.

`HP_CRASH_AT=<point>[,<point>]` makes the operator SIGKILL itself the first time it reaches a
named point, so that an end-to-end test stops it exactly there (not after a guessed sleep) and
then proves that a restarted operator converges: nothing lost, nothing duplicated, no orphan.
SIGKILL, not an exception: a crash runs no cleanup, releases no Lease and flushes no queue.

Never set it outside tests (docs/local-cluster.md, "Crash points"). The points are in POINTS.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger("hybridplace")

ENV = "HP_CRASH_AT"

POINTS = {
    # record_benchmark: the Job is Complete and its result read, the ModelProfile not yet created.
    "job-done-profile-not-written": "a benchmark Job finished and its result read; its ModelProfile not created",
    # reconcile_inference_deployment: one serving Deployment created, the next child not (for a
    # split across pools: one pool's Deployment, not the other's; no Service, no status yet).
    "children-half-created": "one serving Deployment created; the other children and the status not",
}


def armed(environ: dict[str, str] | None = None) -> frozenset[str]:
    """The crash points HP_CRASH_AT names; ValueError naming the variable for an unknown one."""
    raw = (os.environ if environ is None else environ).get(ENV, "")
    chosen = frozenset(p.strip() for p in raw.split(",") if p.strip())
    unknown = sorted(chosen - POINTS.keys())
    if unknown:
        raise ValueError(f"{ENV}={raw!r}: unknown crash point {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(POINTS))}")
    return chosen


def crash_point(name: str) -> None:
    """SIGKILL this process when HP_CRASH_AT names `name` (a test's fault injection); else nothing."""
    assert name in POINTS, name
    if name not in armed():
        return
    log.critical("crash point %s reached (%s=%s): SIGKILL", name, ENV, os.environ.get(ENV))
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)
