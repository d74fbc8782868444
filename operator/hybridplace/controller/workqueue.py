"""A keyed work queue with delays and per-key backoff, in the manner of client-go's workqueue.

Watch events only add keys; worker threads take keys and reconcile. A key is never handed to two
workers at once, a key added while it is being worked on is worked on again afterwards, and a
key added many times while waiting is worked on once. A failed key comes back after an
exponential backoff (capped), so a broken object neither spins nor is forgotten.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable

Key = Hashable


class WorkQueue:
    def __init__(
        self,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        on_wait: Callable[[float], None] | None = None,
    ):
        self._base = base_delay
        self._max = max_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._ready: dict[Key, float] = {}  # keys due now (insertion-ordered), with when they became due
        self._on_wait = on_wait  # told each key's wait from due to taken, seconds (for /metrics)
        self._delayed: list[tuple[float, int, Key]] = []  # heap of (due, seq, key)
        self._due: dict[Key, float] = {}  # earliest due time of each delayed key
        self._seq = itertools.count()
        self._processing: set[Key] = set()
        self._dirty: set[Key] = set()  # added while processing: run again after
        self._failures: dict[Key, int] = {}
        self._shutdown = False
        self._progress = clock()  # when a worker last took or finished a key
        self._waiting_since = clock()  # when keys last became due with none due before

    def add(self, key: Key) -> None:
        """Work on `key` as soon as a worker is free."""
        with self._cond:
            if self._shutdown:
                return
            if key in self._processing:
                self._dirty.add(key)
                return
            self._due.pop(key, None)
            self._make_ready(key)
            self._cond.notify()

    def add_after(self, key: Key, delay: float) -> None:
        """Work on `key` after `delay` seconds (or sooner, if added sooner)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown or key in self._ready:
                return
            due = self._clock() + delay
            if self._due.get(key, float("inf")) <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._seq), key))
            self._cond.notify()

    def retry(self, key: Key, at_least: float = 0.0) -> float:
        """Work on `key` again after its next backoff, and not before `at_least` seconds (a
        server's Retry-After); returns the delay in seconds."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = max(min(self._base * 2 ** min(failures, 64), self._max), at_least)
        self.add_after(key, delay)
        return delay

    def forget(self, key: Key) -> None:
        """`key` succeeded: its next failure starts the backoff afresh."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: Key) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    def get(self, timeout: float | None = None) -> Key | None:
        """The next key to work on (the caller must call `done`), or None on shutdown/timeout."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutdown:
                    return None
                self._promote_due()
                if self._ready:
                    key = next(iter(self._ready))
                    since = self._ready.pop(key)
                    self._processing.add(key)
                    self._progress = self._clock()
                    if self._on_wait is not None:
                        self._on_wait(max(0.0, self._progress - since))
                    return key
                wait = self._delayed[0][0] - self._clock() if self._delayed else None
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(timeout=wait)

    def done(self, key: Key) -> None:
        """The worker finished with `key`; if it was added meanwhile, it is due again."""
        with self._cond:
            self._processing.discard(key)
            self._progress = self._clock()
            if key in self._dirty:
                self._dirty.discard(key)
                self._make_ready(key)
                self._cond.notify()

    def stalled_for(self) -> float:
        """Seconds that work has been due with no worker taking or finishing any key; 0 when
        nothing is due. The liveness probe fails when this grows past its limit."""
        with self._cond:
            self._promote_due()
            if not self._ready:
                return 0.0
            return max(0.0, self._clock() - max(self._progress, self._waiting_since))

    def _make_ready(self, key: Key, since: float | None = None) -> None:
        """`key` is due now; it became due at `since` (a delayed key: its due time)."""
        now = self._clock()
        if not self._ready:
            self._waiting_since = now
        self._ready.setdefault(key, now if since is None else min(since, now))

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._due)

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) != due:
                continue  # superseded by an earlier add
            del self._due[key]
            if key in self._processing:
                self._dirty.add(key)
            else:
                self._make_ready(key, since=due)
