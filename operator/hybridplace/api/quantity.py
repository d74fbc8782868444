"""Kubernetes resource quantities ("500m", "16Gi", 4), parsed exactly.

A small parser of our own keeps the API model free of the Kubernetes client, so the offline
CLI and the solver can use it without importing it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The pattern Kubernetes' Quantity uses (and the CRDs repeat for int-or-string fields).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_NUMBER_RE = re.compile(r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def is_quantity(value: object) -> bool:
    """Whether `value` is an int or a string Kubernetes accepts as a resource quantity."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and _QUANTITY_RE.match(value) is not None


def parse_quantity(value: int | str) -> Decimal:
    """The quantity's value in base units (cores, bytes, devices) as an exact Decimal."""
    if isinstance(value, bool) or not is_quantity(value):
        raise ValueError(f"{value!r} is not a resource quantity (for example 500m, 4, 16Gi)")
    if isinstance(value, int):
        return Decimal(value)
    number = _NUMBER_RE.match(value)
    assert number is not None  # guaranteed by the full pattern
    digits, suffix = number.group(0), value[number.end() :]
    try:
        base = Decimal(digits)
    except InvalidOperation as err:  # pragma: no cover - the pattern rules this out
        raise ValueError(f"{value!r} is not a resource quantity") from err
    if suffix in _BINARY:
        return base * _BINARY[suffix]
    if suffix in _DECIMAL:
        return base * _DECIMAL[suffix]
    return base * Decimal(10) ** int(suffix[1:])  # e or E exponent
