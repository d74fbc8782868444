"""Ages such as `spec.benchmark.maxAge`: a number of seconds, or one number and one unit.

The CRDs accept an integer (seconds) or a string `<n>s|m|h|d` (for example 90s, 30m, 12h, 7d),
or 0 for "never"; anything else is refused with the same message as the CEL rule (rules.py).
"""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,5}[smhd])$")
#: The shortest age that is not 0 (never): a profile re-measured more often would keep its pool busy.
MIN_SECONDS = 10


def age_is_valid(value: object) -> bool:
    """The CEL rule's twin: 0, an integer >= MIN_SECONDS, or `<n><unit>` of at least MIN_SECONDS."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value == 0 or value >= MIN_SECONDS
    if isinstance(value, str):
        return _PATTERN.fullmatch(value) is not None and re.fullmatch(r"[1-9]s", value) is None
    return False


def age_seconds(value: int | str) -> float:
    """Seconds of a valid age (0: never)."""
    if isinstance(value, int):
        return float(value)
    if value == "0":
        return 0.0
    return float(int(value[:-1]) * _UNITS[value[-1]])
