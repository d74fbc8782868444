"""hybridplace benchmark worker and serving runtime. Never imports the operator package."""

__version__ = "0.1.0"
