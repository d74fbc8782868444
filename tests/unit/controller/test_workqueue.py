"""The work queue's promises: dedupe, one worker per key, re-run when dirtied, capped backoff."""

import threading

from hybridplace.controller.workqueue import WorkQueue


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def poll(queue):
    return queue.get(timeout=0)


def test_a_key_added_many_times_is_worked_on_once():
    q = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert poll(q) == "a"
    assert poll(q) == "b"
    assert poll(q) is None


def test_a_key_in_progress_is_not_handed_out_again_but_runs_after():
    q = WorkQueue()
    q.add("a")
    assert poll(q) == "a"
    q.add("a")  # an event arrives while a worker holds "a"
    assert poll(q) is None
    q.done("a")
    assert poll(q) == "a"
    q.done("a")
    assert poll(q) is None


def test_delayed_keys_wait_for_their_time_and_an_earlier_add_wins():
    clock = FakeClock()
    q = WorkQueue(clock=clock)
    q.add_after("a", 10)
    q.add_after("a", 30)  # later: ignored, the earlier due time stands
    assert poll(q) is None
    clock.now += 10
    assert poll(q) == "a"
    q.done("a")
    q.add_after("b", 60)
    q.add("b")  # now beats later
    assert poll(q) == "b"
    q.done("b")
    clock.now += 100
    assert poll(q) is None  # the superseded delayed entry does not fire again


def test_backoff_doubles_up_to_the_cap_and_resets_on_success():
    clock = FakeClock()
    q = WorkQueue(base_delay=1, max_delay=8, clock=clock)
    delays = []
    for _ in range(6):
        delays.append(q.retry("a"))
    assert delays == [1, 2, 4, 8, 8, 8]
    q.forget("a")
    assert q.retry("a") == 1


def test_shutdown_wakes_a_blocked_worker():
    q = WorkQueue()
    got = []
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    q.shutdown()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert got == [None]


def test_a_blocked_worker_wakes_for_a_new_key():
    q = WorkQueue()
    got = []
    worker = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    worker.start()
    q.add("x")
    worker.join(timeout=5)
    assert got == ["x"]
