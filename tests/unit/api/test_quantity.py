from decimal import Decimal

import pytest
from hybridplace.api import parse_quantity
from hybridplace.api.quantity import is_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("4", Decimal(4)),
        (4, Decimal(4)),
        ("16Gi", Decimal(16 * 2**30)),
        ("1k", Decimal(1000)),
        ("1.5Mi", Decimal(int(1.5 * 2**20))),
        ("2e3", Decimal(2000)),
        ("100n", Decimal("1e-7")),
    ],
)
def test_parses_like_kubernetes(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("bad", ["4 cores", "", "Gi", "1.2.3", "16GB", True, 1.5])
def test_refuses_what_kubernetes_refuses(bad):
    assert not is_quantity(bad)
    with pytest.raises(ValueError, match="not a resource quantity"):
        parse_quantity(bad)
