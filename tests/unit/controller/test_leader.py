"""One active operator: the Lease is taken when free or expired, renewed while held, never
taken from a fresh holder; a standby replica reconciles nothing. Against a mock API server."""

from __future__ import annotations

import time

from cases.mock_api import MockApi, Reply, status
from hybridplace.config import Settings
from hybridplace.controller.leader import LeaderElector, _micro
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

LEASES = "/apis/coordination.k8s.io/v1/namespaces/hp/leases"
NOW = 1_800_000_000.0


def lease(holder, renewed, transitions=0):
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "hybridplace-operator", "namespace": "hp", "resourceVersion": "7"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "renewTime": _micro(renewed),
            "leaseTransitions": transitions,
        },
    }


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def elector(api, identity="me", monotonic=None):
    return LeaderElector(api.kube(), "hp", identity, clock=lambda: NOW, monotonic=monotonic or Clock())


def test_a_free_lease_is_created_and_held():
    with MockApi() as api:
        api.on("POST", LEASES, Reply(201, lease("me", NOW)))
        assert elector(api).try_acquire_or_renew()
        (created,) = api.calls("POST", LEASES)
    assert created["spec"]["holderIdentity"] == "me"


def test_two_replicas_creating_at_once_one_wins():
    with MockApi() as api:
        api.on("POST", LEASES, status(409, "AlreadyExists"))
        assert not elector(api).try_acquire_or_renew()


def test_a_fresh_lease_of_another_is_never_taken():
    with MockApi() as api:
        api.on("GET", LEASES, Reply(200, lease("other", NOW - 5)))
        assert not elector(api).try_acquire_or_renew()
        assert not api.calls("PUT", LEASES)


def test_an_expired_lease_is_taken_over_and_ours_is_renewed():
    with MockApi() as api:
        api.on("GET", LEASES, Reply(200, lease("other", NOW - 20, transitions=2)))
        api.on("PUT", LEASES, Reply(200, {}))
        clock = Clock()
        chosen = elector(api, monotonic=clock)
        assert not chosen.try_acquire_or_renew()  # first seen now: its holder may have just renewed
        clock.now += 15  # unchanged for leaseDurationSeconds, as seen here
        assert chosen.try_acquire_or_renew()
        (taken,) = api.calls("PUT", LEASES)
        assert (taken["spec"]["holderIdentity"], taken["spec"]["leaseTransitions"]) == ("me", 3)
        assert taken["metadata"]["resourceVersion"] == "7"  # a conflicting take-over gets 409
    with MockApi() as api:
        api.on("GET", LEASES, Reply(200, lease("me", NOW - 5, transitions=3)))
        api.on("PUT", LEASES, Reply(200, {}))
        assert elector(api).try_acquire_or_renew()
        (renewed,) = api.calls("PUT", LEASES)
        assert renewed["spec"]["leaseTransitions"] == 3 and renewed["spec"]["renewTime"] == _micro(NOW)


def test_losing_the_race_to_take_over_is_not_leading():
    with MockApi() as api:
        api.on("GET", LEASES, Reply(200, lease("other", NOW - 20)))
        api.on("PUT", LEASES, status(409, "Conflict"))
        clock = Clock()
        chosen = elector(api, monotonic=clock)
        chosen.try_acquire_or_renew()
        clock.now += 16
        assert not chosen.try_acquire_or_renew()
        assert len(api.calls("PUT", LEASES)) == 1  # it tried, and another replica won


def test_a_holder_that_keeps_renewing_is_never_taken_over_whatever_its_clock():
    """Expiry is judged by when this replica last saw the Lease change, on its own clock (as
    client-go does), not by the holder's renewTime: a holder whose clock runs 20 s behind keeps
    a Lease it renews every 5 s; once it stops, the Lease passes after leaseDurationSeconds."""
    clock = Clock()
    with MockApi() as api:
        api.on("PUT", LEASES, Reply(200, {}))
        chosen = elector(api, monotonic=clock)
        for renewal in range(6):
            api.on("GET", LEASES, Reply(200, lease("other", NOW - 20 + 5 * renewal)))
            assert not chosen.try_acquire_or_renew()
            clock.now += 5
        assert not api.calls("PUT", LEASES)
        clock.now += 9  # 14 s since it last changed
        assert not chosen.try_acquire_or_renew()
        clock.now += 1
        assert chosen.try_acquire_or_renew()


def test_a_standby_replica_reconciles_nothing_until_it_leads():
    with MockApi() as api:
        rec = Reconciler(api.kube(), ClusterState(), Settings(workers=1), WorkQueue())
        rec.leading.clear()
        rec.start()
        try:
            rec.queue.add(("job", "ns", "x"))
            time.sleep(1.0)
            assert not api.requests  # a standby only watches
            assert rec.health(stall_seconds=10) == []  # and waiting is not a stall
            rec.leading.set()
            deadline = time.monotonic() + 5
            while not api.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert api.calls("GET", "/apis/batch/v1/namespaces/ns/jobs/x")
        finally:
            rec.stop()


def test_a_leader_whose_renewal_hangs_stops_acting_before_its_lease_can_expire():
    """The API server accepts the renewal and never answers (longer than the Lease): the old
    leader must stop acting before a standby may take the Lease over (lease_seconds after the
    last renewTime), not when the hung call finally returns."""
    with MockApi() as api:
        api.on("POST", LEASES, Reply(201, lease("me", NOW)))
        chosen = LeaderElector(api.kube(timeout=(1.0, 30.0)), "hp", "me", lease_seconds=3, renew_seconds=0.3)
        chosen.start()
        try:
            assert chosen.leading.wait(5)
            renewed = time.monotonic()
            api.on("GET", LEASES, Reply(200, lease("me", NOW), hang=8))  # every renewal hangs from here
            while chosen.leading.is_set() and time.monotonic() - renewed < 8:
                time.sleep(0.05)
            lapsed = time.monotonic() - renewed
            assert lapsed < 3, f"still acting {lapsed:.1f} s after its last renewal; the Lease lasts 3 s"
            assert not chosen.leading.wait(0.2)  # and waiting for it blocks, then says no
        finally:
            chosen._stop.set()


def test_a_renew_deadline_outside_renew_and_lease_is_refused():
    with MockApi() as api:
        for deadline in (0.2, 3.0):
            try:
                LeaderElector(api.kube(), "hp", "me", lease_seconds=3, renew_seconds=0.5, renew_deadline=deadline)
            except ValueError as err:
                assert "renew < deadline < lease" in str(err)
            else:
                raise AssertionError(f"renew deadline {deadline} accepted")


def test_after_stop_it_never_leads_even_with_a_renewal_in_flight():
    """stop() while a renewal is on the wire: once stop returns, this replica does not lead
    (the renewal's success does not set it again) and has given the Lease up."""
    with MockApi() as api:
        api.on("POST", LEASES, Reply(201, lease("me", NOW)))
        chosen = LeaderElector(api.kube(timeout=(1.0, 30.0)), "hp", "me", lease_seconds=6, renew_seconds=0.3)
        chosen.start()
        assert chosen.leading.wait(5)
        api.on("PUT", LEASES, Reply(200, {}))
        seen = len(api.calls("GET", LEASES))
        api.on("GET", LEASES, Reply(200, lease("me", NOW), hang=0.3))  # the next renewal is slow, then succeeds
        deadline = time.monotonic() + 5
        while len(api.calls("GET", LEASES)) == seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(api.calls("GET", LEASES)) > seen  # a renewal is on the wire now
        chosen.stop()
        assert not chosen.leading.is_set()
        time.sleep(0.5)
        assert not chosen.leading.is_set()
        released = [b for b in api.calls("PUT", LEASES) if b["spec"]["holderIdentity"] is None]
        assert released, api.calls("PUT", LEASES)


def test_one_hung_renewal_costs_one_renew_interval_not_the_clients_read_timeout():
    """The operator's Kube waits up to 60 s for an answer; a renewal that hung that long left
    the one leader not reconciling for a minute. The elector's own calls wait at most one renew
    interval, so the next renewal, a moment later, keeps it leading."""
    with MockApi() as api:
        api.on("POST", LEASES, Reply(201, lease("me", NOW)))
        api.on("PUT", LEASES, Reply(200, {}))
        chosen = LeaderElector(api.kube(timeout=(1.0, 30.0)), "hp", "me", clock=lambda: NOW, lease_seconds=3,
                               renew_seconds=0.3)
        assert chosen.kube.timeout[1] <= 0.3
        chosen.start()
        try:
            assert chosen.leading.wait(5)
            api.on("GET", LEASES, Reply(200, lease("me", NOW), hang=8), Reply(200, lease("me", NOW)))
            time.sleep(0.5)  # the hung renewal is in flight
            start, lapsed = time.monotonic(), 0.0
            while time.monotonic() - start < 4:
                if not chosen.leading.is_set():
                    lapsed += 0.05
                time.sleep(0.05)
            assert lapsed < 1.0, f"not leading for {lapsed:.1f} s of 4 after one hung renewal"
            assert len(api.calls("PUT", LEASES)) >= 2  # renewed since
        finally:
            chosen._stop.set()
