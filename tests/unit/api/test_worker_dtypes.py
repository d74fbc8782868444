"""Every input dtype the API accepts is one the worker can feed (torch, numpy, Triton): a
dtype the CRD allows but the worker refuses would only fail in the benchmark Job."""

import typing

from hybridplace.api.models import ModelInput
from hybridplace_worker.spec import DTYPES


def test_every_api_dtype_is_a_worker_dtype():
    allowed = typing.get_args(ModelInput.model_fields["dtype"].annotation)
    assert allowed and set(allowed) <= set(DTYPES), set(allowed) - set(DTYPES)


def test_the_api_limit_on_input_elements_is_the_workers():
    """The CRD's rule refuses a shape the worker would refuse (spec.MAX_ELEMENTS), no more, no less."""
    from hybridplace.api.rules import MAX_INPUT_ELEMENTS
    from hybridplace_worker.spec import MAX_ELEMENTS, parse_input_spec

    assert MAX_INPUT_ELEMENTS == MAX_ELEMENTS
    parse_input_spec(f"x:{2**20}x{2**20}:float32")  # exactly the limit: both accept it
