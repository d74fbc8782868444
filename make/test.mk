##@ Test

PYTEST_ARGS ?=
# The tests bring up a cluster of their own (and stop it afterwards), so `make test` never
# disturbs what `make demo` left running, nor the other way round.
HP_TEST_CLUSTER ?= hybridplace-test

.PHONY: test
test: export HP_CLUSTER = $(HP_TEST_CLUSTER)
test: ## Run every test: unit, integration (real local API server) and end to end.
	$(PY) -m pytest tests $(PYTEST_ARGS)

.PHONY: test-chaos
test-chaos: export HP_CLUSTER = hybridplace-chaos
test-chaos: ## Chaos on a cluster of its own: API server killed for 45 s mid-burst (about 4 min).
	$(PY) -m pytest tests/e2e -m chaos $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: ## Run the unit tests only: no cluster, no servers, seconds.
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)
