"""Result documents: the full result, its compact form for the termination log, and errors.

The compact form (``workers/result.schema.json``) maps one-to-one onto ``ModelProfile.spec``
(docs/api.md); each point is a row under ``cols``:

    b -> batchSize, c -> concurrency, p50/p95/p99 -> p50Ms/p95Ms/p99Ms,
    rps -> throughputRps, ips -> throughputIps, spread -> spread, stable (1/0) -> stable

An adaptive search adds ``search`` and ``skipped`` ({reason: [[b, c], ...]}, the grid points
it did not measure; only their count per reason when the list does not fit).

It always fits Kubernetes' 4096-byte termination message: :func:`compact_result` first rounds
(4, then 3, then 2 significant digits), then drops derivable or secondary detail (the ``ips``
column, which is ``rps * b``; the device name's tail), and only as a last resort drops whole
points (highest concurrency first, then largest batch), counting them in ``"dropped"``. It
never cuts JSON text.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import threading
from collections.abc import Callable

from .errors import Reason

SCHEMA_VERSION = 1
TERMINATION_LOG_LIMIT = 4096  # bytes; Kubernetes truncates longer termination messages
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
COLS = ["b", "c", "p50", "p95", "p99", "rps", "ips", "spread", "stable"]
_POINT_KEYS = {
    "b": "batchSize",
    "c": "concurrency",
    "p50": "p50Ms",
    "p95": "p95Ms",
    "p99": "p99Ms",
    "rps": "throughputRps",
    "ips": "throughputIps",
    "spread": "spread",
    "stable": "stable",
}
_DEVICE_KEYS = (
    "accelerator",
    "name",
    "node",
    "cores",
    "threads",
    "memoryMiB",
    "torchVersion",
    "cudaVersion",
    "powerWatts",
    "driverVersion",
)


def error_document(reason: Reason | str, message: str, limit: int = TERMINATION_LOG_LIMIT) -> dict:
    """``{"v": 1, "ok": false, "reason", "message"}``, the message cut to fit ``limit`` bytes."""
    doc = {"v": SCHEMA_VERSION, "ok": False, "reason": str(reason), "message": message}
    while len(dumps(doc)) > limit:
        cut = max(len(doc["message"]) - (len(dumps(doc)) - limit) - 8, 0)
        doc["message"] = doc["message"][:cut] + "..."
    return doc


def dumps(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def _round_sig(x: float | int | None, digits: int) -> float | int | None:
    if x is None or isinstance(x, bool):
        return x
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x == 0:
        return 0
    magnitude = math.floor(math.log10(abs(x)))
    value = round(x, digits - 1 - magnitude)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value


def _point_row(point: dict, cols: list[str], digits: int) -> list:
    row = []
    for col in cols:
        value = point[_POINT_KEYS[col]]
        if col == "stable":
            row.append(1 if value else 0)
        elif col in ("b", "c"):
            row.append(int(value))
        else:
            row.append(_round_sig(value, digits))
    return row


def compact_result(full: dict, limit: int = TERMINATION_LOG_LIMIT) -> dict:
    """The compact form of a full (ok) result, at most ``limit`` bytes once serialised."""
    points = sorted(full["points"], key=lambda p: (p["batchSize"], p["concurrency"]))
    device = {k: full["device"].get(k) for k in _DEVICE_KEYS}
    base = {
        "v": SCHEMA_VERSION,
        "ok": True,
        "engine": full["engine"],
        "model": {k: full["model"][k] for k in ("name", "digest", "format")},
        "device": device,
        "workerVersion": full["workerVersion"],
        "measuredAt": full["measuredAt"],
    }
    if full.get("search"):
        base["search"] = full["search"]
    if full.get("requestOverheadMs") is not None:
        base["requestOverheadMs"] = full["requestOverheadMs"]
    skipped = full.get("skipped") or {}
    detail = [True]  # skipped points listed; counts only when they do not fit

    def build(cols: list[str], digits: int, keep: list[dict], name_len: int | None) -> dict:
        doc = dict(base)
        if skipped:
            doc["skipped"] = skipped if detail[0] else {reason: len(points) for reason, points in skipped.items()}
        dev = dict(device)
        if name_len is not None and isinstance(dev.get("name"), str):
            dev["name"] = dev["name"][:name_len]
        if isinstance(dev.get("node"), str):
            dev["node"] = dev["node"][:253]  # a Kubernetes node name is at most 253 characters
        doc["device"] = dev
        if isinstance(doc["model"].get("name"), str) and len(doc["model"]["name"]) > 512:
            doc["model"] = dict(doc["model"], name=doc["model"]["name"][:509] + "...")
        doc["cols"] = cols
        doc["points"] = [_point_row(p, cols, digits) for p in keep]
        dropped = len(points) - len(keep)
        if dropped:
            doc["dropped"] = dropped
        return doc

    attempts: list[tuple[list[str], int, int | None]] = [
        (COLS, 4, None),
        (COLS, 3, None),
        (COLS, 3, 64),
        ([c for c in COLS if c != "ips"], 3, 64),
        ([c for c in COLS if c != "ips"], 2, 32),
    ]
    for listed in (True, False):
        detail[0] = listed
        for cols, digits, name_len in attempts:
            doc = build(cols, digits, points, name_len)
            if len(dumps(doc)) <= limit:
                return doc
    # Last resort: drop points, least informative first (highest concurrency, then largest batch).
    cols, digits, name_len = attempts[-1]
    order = sorted(points, key=lambda p: (p["concurrency"], p["batchSize"]))
    lo, hi = 0, len(order)
    while lo < hi:  # largest prefix (by informativeness) that fits
        mid = (lo + hi + 1) // 2
        keep = sorted(order[:mid], key=lambda p: (p["batchSize"], p["concurrency"]))
        if len(dumps(build(cols, digits, keep, name_len))) <= limit:
            lo = mid
        else:
            hi = mid - 1
    keep = sorted(order[:lo], key=lambda p: (p["batchSize"], p["concurrency"]))
    doc = build(cols, digits, keep, name_len)
    if len(dumps(doc)) > limit:  # only absurdly long fixed fields can get here
        return error_document(Reason.INTERNAL, "result does not fit the termination log", limit)
    return doc


def expand_compact(compact: dict) -> list[dict]:
    """The points of a compact result as ModelProfile point dicts (what the operator does)."""
    out = []
    for row in compact["points"]:
        point = {_POINT_KEYS[c]: v for c, v in zip(compact["cols"], row, strict=True)}
        point["stable"] = bool(point["stable"])
        if "throughputIps" not in point:
            point["throughputIps"] = point["throughputRps"] * point["batchSize"]
        out.append(point)
    return out


class ResultSink:
    """Writes the run's one final document, once, from whichever thread finishes first.

    The watchdog and the main thread race at the deadline; the first to call :meth:`finish`
    wins and later calls are ignored, so the termination log never holds two documents.
    """

    def __init__(
        self,
        termination_log: str | None,
        output: str | None = "-",
        stdout: Callable[[bytes], object] | None = None,
    ):
        self.termination_log = termination_log
        self.output = output
        self._stdout = stdout
        self._lock = threading.Lock()
        self.finished: dict | None = None

    def finish(self, full: dict, compact: dict | None = None) -> bool:
        """Write ``full`` to the output and its compact form to the termination log; once.

        The termination log is written first, and the run counts as finished only once it is.
        If the output cannot be written (a bad path, a full disk, a number JSON cannot hold),
        the termination log ends up holding one ``Internal`` document that says so instead
        (an error document keeps its reason and gains a note); :attr:`finished` is then the
        document the termination log holds, so the caller can tell (``finished["ok"]``)."""
        with self._lock:
            if self.finished is not None:
                return False
            text: str | None = None
            problem: str | None = None
            try:
                if compact is None:
                    compact = (
                        compact_result(full) if full.get("ok") else error_document(full["reason"], full["message"])
                    )
                dumps(compact)  # a number JSON cannot hold fails here, not half-way through a write
                text = json.dumps(full, indent=2, allow_nan=False) + "\n"
            except (ValueError, TypeError, KeyError) as exc:
                problem = f"the result cannot be written as JSON ({type(exc).__name__}: {exc})"
            if problem is None:
                write_termination_log(self.termination_log, compact)
                try:
                    self._write_output(text)
                except OSError as exc:
                    problem = f"cannot write --output {self.output}: {exc}"
            if problem is not None:
                compact = self._failure_document(full, problem)
                if text is None:  # the output itself is fine: it gets the error, as any error
                    with contextlib.suppress(OSError):
                        self._write_output(json.dumps(compact, indent=2) + "\n")
                write_termination_log(self.termination_log, compact)
            self.finished = full if problem is None else compact
            return True

    @staticmethod
    def _failure_document(full: dict, problem: str) -> dict:
        if full.get("ok") is False and "reason" in full:
            return error_document(full["reason"], f"{full.get('message', '')} (and {problem})")
        return error_document(Reason.INTERNAL, problem)

    def _write_output(self, text: str) -> None:
        if self.output in (None, ""):
            return
        if self.output == "-":
            if self._stdout is not None:
                self._stdout(text.encode())
            else:
                sys.stdout.write(text)
                sys.stdout.flush()
            return
        tmp = f"{self.output}.tmp"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, self.output)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def write_termination_log(path: str | None, doc: dict) -> None:
    """Write ``doc`` (<= 4096 bytes) to the termination log.

    The default ``/dev/termination-log`` exists only in a container (the kubelet mounts it);
    outside one it is skipped rather than created under /dev. Any other path is created.
    """
    if not path:
        return
    data = dumps(doc)
    if len(data) > TERMINATION_LOG_LIMIT:
        data = dumps(error_document(Reason.INTERNAL, "compact result exceeded 4096 bytes"))
    if path == DEFAULT_TERMINATION_LOG and not os.path.exists(path):
        return
    with open(path, "wb") as f:
        f.write(data)
