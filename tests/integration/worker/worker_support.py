"""Shared constants for the worker integration tests (a module of its own: importing from
``conftest`` is fragile when several conftest.py files are loaded in one session)."""

#: Tiny measurement settings: these tests check behaviour and contracts, not performance.
# Short windows; no request-overhead measurement (the test of it asks for one).
FAST = [
    "--duration-seconds",
    "0.3",
    "--warmup-seconds",
    "0.05",
    "--max-windows",
    "4",
    "--request-overhead-seconds",
    "0",
]
