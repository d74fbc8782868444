"""The `hybridplace` command: run the operator, recommend offline, explain a decision."""

from .main import main

__all__ = ["main"]
