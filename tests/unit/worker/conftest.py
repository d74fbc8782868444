"""Worker unit tests: no servers, no GPU. Fakes are named as fakes (FakeClock, MockCudaEvent)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # worker_schema_check
