##@ Local cluster (real control plane, kwok nodes; docs/local-cluster.md)

# Which local cluster the targets act on; each name has its own state, ports and processes.
export HP_CLUSTER ?= hybridplace
CLUSTER = $(PY) cluster/localcluster.py
KUBECTL = cluster/kubectl

.PHONY: cluster-up
cluster-up: ## Start the local cluster, or reuse a running healthy one; prints the kubeconfig path.
	@$(CLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop every process the local cluster started (by PID) and remove its state.
	@$(CLUSTER) down

.PHONY: cluster-status
cluster-status: ## Show the local cluster's processes, ports and nodes.
	@$(CLUSTER) status

##@ Tools (Go-built, cached in $HP_CACHE/bin/<component>-<version>)

.PHONY: cluster-tools
cluster-tools: ## Build or reuse kube-apiserver, -controller-manager, -scheduler, kubectl, etcd, kwok, prometheus.
	@for c in kubernetes etcd kwok prometheus; do cluster/tools/build.sh $$c >/dev/null; done
	@ls -d $(HP_CACHE)/bin/*/ | sed 's/^/  /'

.PHONY: helm
helm: ## Build or reuse helm (v3; for the chart, not needed by the cluster).
	@cluster/tools/build.sh helm

.PHONY: tools
tools: cluster-tools helm ## Build or reuse every Go-built tool.

.PHONY: cluster-tools-gen
cluster-tools-gen: ## Regenerate cluster/tools/*/go.mod and go.sum from cluster/tools/versions.env.
	python3 cluster/tools/generate.py

.PHONY: verify-cluster-tools
verify-cluster-tools: ## Fail if the committed tool go.mod/go.sum differ from a fresh generation.
	python3 cluster/tools/generate.py --check

# `make verify` runs every area's checks; this area adds its own.
.PHONY: verify
verify: verify-cluster-tools

# The tests start the local cluster; build its binaries (and helm) first, outside pytest's
# per-test timeout, when they are not cached yet.
test: tools

##@ Data plane (real serving pods, Prometheus, load; docs/local-cluster.md)

.PHONY: bench-data-plane
bench-data-plane: ## Load generator's achieved vs asked rate (50, 200 requests/s x 20 s) and client vs Prometheus p95, on builtin:delay (a few minutes).
	$(PY) benchmarks/data_plane.py $(BENCH_ARGS)

.PHONY: bench-scaling
bench-scaling: ## Replicas following a load stepping 20 <-> 120 requests/s x 5, then 3 min steady: timeline, reaction times, docs/scaling-timeline.png (~16 min).
	$(PY) benchmarks/scaling_timeline.py --plot docs/scaling-timeline.png $(BENCH_ARGS)

.PHONY: bench-scaling-cost
bench-scaling-cost: ## The scaling loop's CPU for 1,000 deployments at a steady load (synthetic metrics; goal < 10% of a core).
	$(PY) benchmarks/observe_scale.py $(BENCH_ARGS)
