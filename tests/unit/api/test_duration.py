"""Ages (spec.benchmark.maxAge, a pool's profileMaxAge): what the CEL rule's Python twin accepts,
and how many seconds each is."""

import pytest
from cases.api_objects import VALID
from hybridplace.api import parse_object
from hybridplace.api.duration import age_is_valid, age_seconds
from hybridplace.api.validate import InvalidObject


@pytest.mark.parametrize(("value", "seconds"), [
    (0, 0), ("0", 0), (10, 10), (86400, 86400), ("10s", 10), ("90s", 90), ("30m", 1800), ("12h", 43200),
    ("7d", 604800), ("999999d", 999999 * 86400),
])
def test_accepted_ages_and_their_seconds(value, seconds):
    assert age_is_valid(value)
    assert age_seconds(value) == seconds


@pytest.mark.parametrize("value", [5, -1, 9, "5s", "9s", "1h30m", "2w", "", "10", "05m", "1.5h", "1000000d", True, 1.5])
def test_refused_ages(value):
    assert not age_is_valid(value)


def test_the_model_refuses_a_bad_max_age_naming_the_field():
    obj = VALID["InferenceDeployment"]("x")
    obj["spec"].setdefault("benchmark", {})["maxAge"] = "1h30m"
    with pytest.raises(InvalidObject) as err:
        parse_object(obj)
    assert "spec.benchmark.maxAge" in str(err.value) and "90s, 30m, 12h or 7d" in str(err.value)
