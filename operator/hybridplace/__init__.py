"""hybridplace: place inference services on the cheapest hardware that meets their latency SLO."""

__version__ = "0.1.0"
