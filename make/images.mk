##@ Images and kind (no daemon: buildah, vfs, chroot isolation; README.md "Images" and "On your laptop with Docker")

# Where the OCI archives go (outside the checkout, like every build output).
IMAGES_DIR ?= $(HP_CACHE)/images/archives

.PHONY: images-base
images-base: ## Build (or reuse) the images' base from Debian packages: mmdebstrap bookworm + Python 3.11 (root; apt-get install buildah mmdebstrap).
	@hack/images/base.sh

.PHONY: images
images: ## Build the operator, worker-cpu and worker-cuda images from their Dockerfiles with buildah, as OCI archives in IMAGES_DIR; prints sizes and times.
	@IMAGES_DIR=$(IMAGES_DIR) hack/images/build.sh $(IMAGES)

.PHONY: images-check
images-check: ## Run each built image's entrypoint in its root filesystem (root; chroot, non-root, read-only root): worker bench on builtin:mlp, operator run --help (a minute).
	$(PY) -m pytest tests/images -m images $(PYTEST_ARGS)

.PHONY: kind-check
kind-check: ## Validate cluster/kind/config.yaml with kind's own loader (sigs.k8s.io/kind v0.33.0; no Docker needed).
	@cd hack/kindcheck && go run . ../../cluster/kind/config.yaml

.PHONY: kind-up
kind-up: ## With Docker: a kind cluster (cluster/kind/config.yaml), the built images loaded, the chart installed from them, the example pools.
	@IMAGES_DIR=$(IMAGES_DIR) hack/kind-up.sh
