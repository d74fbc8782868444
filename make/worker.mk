##@ Worker (benchmark worker and serving runtime, workers/)

HADOLINT = $(VENV)/bin/hadolint
BENCH_ARGS ?=

.PHONY: worker-test-unit
worker-test-unit: ## Worker unit tests: fake clocks, mock GPU, no servers (seconds).
	$(PY) -m pytest tests/unit/worker $(PYTEST_ARGS)

.PHONY: worker-test
worker-test: ## Worker unit + integration tests (torch engine on CPU, real local tritonserver; minutes).
	$(PY) -m pytest tests/unit/worker tests/integration/worker $(PYTEST_ARGS)

.PHONY: worker-lint
worker-lint: ## Lint the worker: ruff on its code and tests, hadolint on both Dockerfiles.
	$(PY) -m ruff check workers tests/unit/worker tests/integration/worker benchmarks/worker_*.py
	$(PY) -m ruff format --check workers tests/unit/worker tests/integration/worker benchmarks/worker_*.py
	$(HADOLINT) --failure-threshold info workers/Dockerfile.cpu workers/Dockerfile.cuda

.PHONY: perf-analyzer
perf-analyzer: ## Fetch NVIDIA perf_analyzer (tritonclient 2.41.0 wheel, libb64, cudart) into HP_CACHE.
	@benchmarks/fetch-perf-analyzer.sh $(PY)

.PHONY: bench-worker
bench-worker: bench-worker-overhead bench-worker-triton ## Run both worker benchmarks and print their figures.

.PHONY: bench-worker-overhead
bench-worker-overhead: ## Print the timing loop's own overhead per measured call (goal < 50 us on CPU).
	$(PY) benchmarks/worker_timing_overhead.py $(BENCH_ARGS)

.PHONY: bench-worker-triton
bench-worker-triton: ## Our triton engine against perf_analyzer on the same tritonserver: 3 runs x 20 ABBA rounds, idle CPUs polling, ratios with 95% intervals and run-to-run spread (~36 min).
	$(PY) benchmarks/worker_vs_perf_analyzer.py --perf-analyzer-dir "$$(benchmarks/fetch-perf-analyzer.sh $(PY))" --runs 3 $(BENCH_ARGS)

.PHONY: gpu-check
gpu-check: ## On an NVIDIA GPU machine: worker on CUDA, vs perf_analyzer, ModelProfiles + report (GPU_CHECK_OUT).
	PY=$(PY) benchmarks/gpu_check.sh $(GPU_CHECK_OUT)
