#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py says what it measures): run it on a machine with an
# NVIDIA GPU, from the repository root, with the project's Python environment.
#
#   benchmarks/gpu_check.sh [OUTDIR]          (make gpu-check; OUTDIR defaults to gpu-check-<UTC time>)
#
# PY: the Python with the project's packages (default: python3; make gpu-check passes the venv's).
# HP_PERF_ANALYZER_DIR: a folder from benchmarks/fetch-perf-analyzer.sh; fetched when unset (a
# machine without the network then skips the perf_analyzer comparison and says so).
# HP_GPU_CHECK_BUDGET_SECONDS: the whole run's budget (default 420: under 8 minutes with start-up).
# Without a GPU: one line, exit 0, nothing written.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PY:-python3}
out=${1:-gpu-check-$(date -u +%Y%m%dT%H%M%SZ)}
absent=$("$py" -c 'import sys; sys.path.insert(0, "benchmarks"); from gpu_check import gpu_absent_reason as r; print(r() or "")')
if [ -n "$absent" ]; then
  echo "gpu-check: no NVIDIA GPU here ($absent); nothing measured"
  exit 0
fi
pa_dir=${HP_PERF_ANALYZER_DIR:-}
if [ -z "$pa_dir" ]; then
  pa_dir=$(benchmarks/fetch-perf-analyzer.sh "$py" 2>/dev/null) || {
    echo "gpu-check: perf_analyzer could not be fetched; the comparison will be skipped" >&2
    pa_dir=
  }
fi
exec "$py" benchmarks/gpu_check.py --out "$out" ${pa_dir:+--perf-analyzer-dir "$pa_dir"} \
  --budget-seconds "${HP_GPU_CHECK_BUDGET_SECONDS:-420}"
