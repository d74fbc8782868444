##@ Helm chart (charts/hybridplace)

# Built (or found in the cache) once per make run, like the Python environment.
HELM_DIR = $(eval HELM_DIR := $$(shell cluster/tools/build.sh helm))$(HELM_DIR)
HELM = $(or $(HELM_DIR),$(error helm could not be built: see the messages above))/helm

.PHONY: chart-crds
chart-crds: ## Copy crds/ into the chart's templates (the chart never drifts from crds/).
	@python3 hack/chart-crds.py

.PHONY: chart-lint
chart-lint: ## helm lint --strict the chart and render it once.
	$(HELM) lint --strict charts/hybridplace
	$(HELM) template hybridplace charts/hybridplace --namespace hybridplace-system >/dev/null

.PHONY: verify-chart
verify-chart: ## Fail if the chart's CRDs differ from crds/.
	@python3 hack/chart-crds.py --check

verify: verify-chart
