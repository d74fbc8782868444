##@ Demo

.PHONY: demo
demo: ## The main job: local cluster, CRDs, pools, the operator, an InferenceDeployment; prints the decision.
	@$(PY) hack/demo.py run

.PHONY: demo-stop
demo-stop: ## Stop the operator `make demo` started (the cluster keeps running).
	@$(PY) hack/demo.py stop
