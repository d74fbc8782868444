import hashlib

import pytest
from hybridplace.api import BUILTIN_MODEL_VERSIONS, builtin_digest


def test_digest_is_defined_by_name_and_version():
    expected = hashlib.sha256(b"hybridplace.io/builtin/mlp@1").hexdigest()
    assert BUILTIN_MODEL_VERSIONS["mlp"] == 1
    assert builtin_digest("mlp") == f"sha256:{expected}"


def test_each_builtin_has_its_own_digest():
    digests = {builtin_digest(name) for name in BUILTIN_MODEL_VERSIONS}
    assert len(digests) == len(BUILTIN_MODEL_VERSIONS)


def test_unknown_builtin_is_named():
    with pytest.raises(ValueError, match="unknown built-in model 'bert'"):
        builtin_digest("bert")
