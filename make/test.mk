##@ Test

PYTEST_ARGS ?=
# The tests bring up a cluster of their own (and stop it afterwards), so `make test` never
# disturbs what `make demo` left running, nor the other way round.
HP_TEST_CLUSTER ?= hybridplace-test

.PHONY: test
test: export HP_CLUSTER = $(HP_TEST_CLUSTER)
test: ## Run every test: unit, integration (real local API server) and end to end.
	$(PY) -m pytest tests $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: ## Run the unit tests only: no cluster, no servers, seconds.
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)
