##@ Placement (the pure placement engine, operator/hybridplace/placement/)

.PHONY: placement-test
placement-test: ## Placement engine unit tests: exhaustive search, properties, seed table (seconds).
	$(PY) -m pytest tests/unit/placement $(PYTEST_ARGS)

.PHONY: bench-solver
bench-solver: ## Time one decision over 10 pools x 10 batch sizes x 5 concurrency levels (target <= 50 ms).
	$(PY) benchmarks/bench_solver.py $(BENCH_ARGS)

.PHONY: bench-latency-model
bench-latency-model: ## Latency model vs a simulation of the batcher: 240 cases, p50/p95/p99 errors (a minute).
	$(PY) benchmarks/bench_latency_model.py $(BENCH_ARGS)
