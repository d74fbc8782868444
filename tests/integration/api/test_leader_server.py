"""Two operator replicas, one acting, against the real API server's Lease: exactly one
elector leads at any time, and the other takes over when the leader stops."""

from __future__ import annotations

import time

import pytest
from hybridplace.controller.kube import Kube, load_client
from hybridplace.controller.leader import LeaderElector

pytestmark = pytest.mark.cluster


def test_two_replicas_one_leads_and_the_other_takes_over(kubeconfig, namespace):
    electors = [
        LeaderElector(Kube(load_client(kubeconfig)), namespace, f"replica-{i}", lease_seconds=3, renew_seconds=0.5)
        for i in range(2)
    ]
    for e in electors:
        e.start()
    try:
        deadline = time.monotonic() + 20
        while not any(e.leading.is_set() for e in electors) and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(20):  # 4 s: never both (under load a renewal may lapse and leave none for a moment)
            assert sum(e.leading.is_set() for e in electors) <= 1
            time.sleep(0.2)
        deadline = time.monotonic() + 20
        while not any(e.leading.is_set() for e in electors) and time.monotonic() < deadline:
            time.sleep(0.1)
        leader = next(e for e in electors if e.leading.is_set())
        standby = next(e for e in electors if e is not leader)
        leader.stop()  # gives the Lease up
        deadline = time.monotonic() + 30  # a loaded machine (a full make test) took over 10 s once
        while not standby.leading.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert standby.leading.is_set() and not leader.leading.is_set()
    finally:
        for e in electors:
            e.stop()
