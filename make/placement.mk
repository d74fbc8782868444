##@ Placement (the pure placement engine, operator/hybridplace/placement/)

.PHONY: placement-test
placement-test: ## Placement engine unit tests: exhaustive search, properties, seed table (seconds).
	$(PY) -m pytest tests/unit/placement $(PYTEST_ARGS)

.PHONY: bench-solver
bench-solver: ## Time a decision over 10 pools x 10 batch sizes x 5 concurrency levels (target <= 20 ms CPU), the re-solve at a new load (<= 1 ms) and cases at the schema limits (<= 1 s).
	$(PY) benchmarks/bench_solver.py $(BENCH_ARGS)

.PHONY: bench-latency-model
bench-latency-model: ## Latency model vs a simulation of the batcher: 336 cases, p50/p95/p99 errors (a minute).
	$(PY) benchmarks/bench_latency_model.py $(BENCH_ARGS)

.PHONY: recommend-example
recommend-example: ## hybridplace recommend on the seed example (examples/hardwarepools.yaml + examples/seed/) at 20, 50, 100 and 900 requests/s.
	$(VENV)/bin/hybridplace recommend -f examples/hardwarepools.yaml -f examples/seed/ --target-rps 20 50 100 900

.PHONY: seed-crossover
seed-crossover: ## The seed table's worked example: cost of CPU alone, GPU alone and the choice from 1 to 5,000 requests/s, and the crossover.
	$(PY) benchmarks/seed_crossover.py $(BENCH_ARGS)

.PHONY: plot
plot: ## seed-crossover, and its figure (cost per hour against load) in docs/seed-crossover.png.
	$(PY) benchmarks/seed_crossover.py --plot docs/seed-crossover.png $(BENCH_ARGS)

.PHONY: bench-latency-validation
bench-latency-validation: ## Latency model vs a real tritonserver (one CPU) under open-loop Poisson load (Go generator on another CPU), builtin delay and mlp, utilisation 0.2-0.85: measured, predicted and calibrated p95, table and docs/latency-validation.png (~20 min; waits for a quiet host).
	$(PY) benchmarks/validate_latency_model.py --plot docs/latency-validation.png $(BENCH_ARGS)

.PHONY: bench-capacity-drift
bench-capacity-drift: ## How steady this host's serving capacity is: tritonserver on one CPU saturated window after window (builtin mlp, ~1 min); run before bench-latency-validation.
	$(PY) benchmarks/capacity_drift.py $(BENCH_ARGS)

.PHONY: report-examples
report-examples: ## hybridplace report on the seed example and on builtin:resnet as measured (CPU here, H200): docs/reports/.
	$(VENV)/bin/hybridplace report -f examples/hardwarepools.yaml -f examples/seed/ -o docs/reports/seed
	$(VENV)/bin/hybridplace report -f examples/hardwarepools.yaml -f examples/gpu/h200/modelprofiles-torch.yaml -f examples/measured/resnet/ -o docs/reports/resnet

.PHONY: seed-cost
seed-cost: ## The cost goal: the seed table at 3,000 requests/s with the default headroom against the fewest replicas a simulation shows meeting the SLO (seconds; exit 1 past 10%).
	$(PY) benchmarks/seed_cost.py $(BENCH_ARGS)
