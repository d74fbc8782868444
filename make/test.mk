##@ Test

PYTEST_ARGS ?=

.PHONY: test
test: ## Run every test: unit, integration (real local API server) and end to end.
	$(PY) -m pytest tests $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: ## Run the unit tests only: no cluster, no servers, seconds.
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)
