"""The hybridplace.io/v1alpha1 API as typed Python objects, validated like the API server does.

No Kubernetes client import here: the offline CLI and the placement engine use it too.
"""

from .builtins import BUILTIN_MODEL_VERSIONS, builtin_digest
from .files import FileProblem, Loaded, load_objects
from .models import (
    API_VERSION,
    GROUP,
    KINDS,
    VERSION,
    HardwarePool,
    InferenceDeployment,
    ModelProfile,
)
from .quantity import parse_quantity
from .validate import FieldError, InvalidObject, parse_object

__all__ = [
    "API_VERSION",
    "BUILTIN_MODEL_VERSIONS",
    "GROUP",
    "KINDS",
    "VERSION",
    "FieldError",
    "FileProblem",
    "HardwarePool",
    "InferenceDeployment",
    "InvalidObject",
    "Loaded",
    "ModelProfile",
    "builtin_digest",
    "load_objects",
    "parse_object",
    "parse_quantity",
]
