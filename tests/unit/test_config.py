"""The operator's settings: environment first, then flags; values it cannot work with are refused
with the flag and the variable named, before anything starts."""

import pytest
from hybridplace.config import Settings
from hybridplace.placement.solver import MAX_ALTERNATIVES


def test_environment_then_overrides(monkeypatch):
    monkeypatch.setenv("HP_WORKERS", "3")
    monkeypatch.setenv("HP_NAMESPACES", "a, b,a,")  # each once, in order
    settings = Settings.from_env(resync_seconds=30.0)
    assert (settings.workers, settings.namespaces, settings.resync_seconds) == (3, ("a", "b"), 30.0)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"workers": 0}, "--workers (HP_WORKERS) is 0; it must be between 1 and 256"),
    ({"resync_seconds": 0.0}, "--resync-seconds (HP_RESYNC_SECONDS) is 0; it must be between 1 and 315360000"),
    ({"resync_seconds": 1e20}, "--resync-seconds (HP_RESYNC_SECONDS) is 1e+20; it must be between 1 and 315360000"),
    ({"job_ttl_seconds": -1}, "--job-ttl-seconds (HP_JOB_TTL_SECONDS) is -1; it must be between 0 and 2147483647"),
    # the Job's ttlSecondsAfterFinished is an int32: the API server would refuse every benchmark Job
    ({"job_ttl_seconds": 2**31}, "--job-ttl-seconds (HP_JOB_TTL_SECONDS) is 2147483648; it must be between 0 and "
                                 "2147483647"),
    ({"leader_election_name": "Team A"}, "--leader-election-name (HP_LEADER_ELECTION_NAME) is 'Team A'; it must be "
                                         "a Lease name: lower-case letters, digits, '-' and '.', at most 253"),
    ({"max_alternatives": MAX_ALTERNATIVES + 1},
     f"--max-alternatives (HP_MAX_ALTERNATIVES) is {MAX_ALTERNATIVES + 1}; it must be between 0 and 64"),
])
def test_values_it_cannot_work_with_are_refused(overrides, message):
    with pytest.raises(ValueError) as err:
        Settings.from_env(**overrides)
    assert str(err.value) == message


def test_a_malformed_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("HP_WORKERS", "many")
    with pytest.raises(ValueError, match="environment variable HP_WORKERS \\(--workers\\): 'many' is not a valid int"):
        Settings.from_env()


def test_the_default_gateway_is_namespace_slash_name_or_a_name():
    assert Settings(default_gateway="gateways/shared").default_gateway == "gateways/shared"
    assert Settings(default_gateway="shared").default_gateway == "shared"
    with pytest.raises(ValueError, match="--default-gateway"):
        Settings(default_gateway="a/b/c")
