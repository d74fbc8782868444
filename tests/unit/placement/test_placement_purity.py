"""The placement engine is pure: importing it pulls in no Kubernetes client, kopf, pydantic,
torch, or the API model, so the operator, the offline CLI and benchmarks share it as is."""

import json
import subprocess
import sys

FORBIDDEN = ("kubernetes", "kopf", "pydantic", "torch", "numpy", "hybridplace.api",
             "hybridplace_worker")


def test_importing_the_engine_loads_no_kubernetes_kopf_pydantic_or_torch():
    code = (
        "import json, sys\n"
        "import hybridplace.placement\n"
        "from hybridplace.placement import solve, predict_latency, simulate_latency\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    loaded = json.loads(out)
    offenders = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert "hybridplace.placement" in loaded  # the check ran against the real import
    assert offenders == []
