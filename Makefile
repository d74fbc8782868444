# hybridplace: `make help` lists every target with what it does.
#
# Build outputs, binaries and Python environments live outside the checkout, under HP_CACHE
# (default ~/.cache/hybridplace), keyed by version, so a fresh clone reuses them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

export HP_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hybridplace
PYTHON ?= python3
# The Python environment for this checkout, created on first use by hack/ensure-venv.sh (and
# looked up once per make run: the eval memoises it).
VENV_DIR = $(eval VENV_DIR := $$(shell PYTHON=$(PYTHON) hack/ensure-venv.sh))$(VENV_DIR)
VENV = $(or $(VENV_DIR),$(error the Python environment could not be created: see the messages above))
PY = $(VENV)/bin/python

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
	  /^[a-zA-Z0-9_.-]+:.*?##/ { printf "  \033[36m%-22s\033[0m %s\n", $$1, $$2 } \
	  /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: venv
venv: ## Create or reuse the Python environment (operator, worker and test tools).
	@echo $(VENV)

# Each area keeps its targets in its own file.
include make/*.mk
