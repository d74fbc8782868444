"""Every input dtype the API accepts is one the worker can feed (torch, numpy, Triton): a
dtype the CRD allows but the worker refuses would only fail in the benchmark Job."""

import typing

from hybridplace.api.models import ModelInput
from hybridplace_worker.spec import DTYPES


def test_every_api_dtype_is_a_worker_dtype():
    allowed = typing.get_args(ModelInput.model_fields["dtype"].annotation)
    assert allowed and set(allowed) <= set(DTYPES), set(allowed) - set(DTYPES)
