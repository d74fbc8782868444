##@ Demo

.PHONY: demo
demo: ## The main job: local cluster, CRDs, pools, the operator, an InferenceDeployment; prints the decision.
	@$(PY) hack/demo.py run

.PHONY: demo-stop
demo-stop: ## Stop the operator `make demo` started (the cluster keeps running).
	@$(PY) hack/demo.py stop

.PHONY: dashboard-png
dashboard-png: ## Draw the Grafana dashboard's panels from the local cluster's Prometheus (after make demo) into docs/dashboard.png.
	$(PY) hack/render_dashboard.py --minutes 3.5 --step 5 --out docs/dashboard.png
