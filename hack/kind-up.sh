#!/usr/bin/env bash
# `make kind-up`: a kind cluster (cluster/kind/config.yaml) with the images `make images` built
# loaded into it, the chart installed from them, and the example HardwarePools. Needs Docker (or
# Podman: KIND_EXPERIMENTAL_PROVIDER=podman), kubectl and helm; kind itself is used from PATH, or
# built from the Go module proxy (v0.33.0) into $HP_CACHE/bin. Safe to run again: an existing
# cluster is reused and the release upgraded.
#
# Environment: KIND_CLUSTER (hybridplace), IMAGES_DIR (where `make images` left the archives),
# HELM, KUBECTL, KIND (the binaries), HELM_ARGS (extra `helm upgrade --install` arguments).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/hack/images/common.sh"
KIND_VERSION=v0.33.0
KIND_CLUSTER=${KIND_CLUSTER:-hybridplace}
IMAGES_DIR=${IMAGES_DIR:-$IMAGES_CACHE/archives}
KUBECTL=${KUBECTL:-kubectl}
HELM=${HELM:-helm}
if [ -z "${KIND:-}" ]; then
  KIND=$(command -v kind || true)
  if [ -z "$KIND" ]; then
    GOBIN="$HP_CACHE/bin/kind-$KIND_VERSION" go install "sigs.k8s.io/kind@$KIND_VERSION"
    KIND="$HP_CACHE/bin/kind-$KIND_VERSION/kind"
  fi
fi
archives=("$IMAGES_DIR"/operator-"$VERSION".tar "$IMAGES_DIR"/worker-cpu-"$VERSION".tar)
for a in "${archives[@]}"; do
  [ -f "$a" ] || { echo "kind-up: $a is missing; run \`make images\` first" >&2; exit 1; }
done
gpu_worker=()
if [ -f "$IMAGES_DIR/worker-cuda-$VERSION.tar" ]; then
  archives+=("$IMAGES_DIR/worker-cuda-$VERSION.tar")
else
  # No CUDA image built (its NVIDIA base was not to be had): GPU-pool benchmarks run the CPU
  # image, which reports NoDevice at once, instead of waiting on an image nobody can pull.
  gpu_worker=(--set "settings.workerImageGpu=$REGISTRY/worker-cpu:$VERSION")
  echo "kind-up: no worker-cuda archive; the GPU pool's benchmarks use worker-cpu (they fail with NoDevice)"
fi

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
  "$KIND" create cluster --name "$KIND_CLUSTER" --config "$here/cluster/kind/config.yaml" --wait 120s
fi
ctx=(--context "kind-$KIND_CLUSTER")
# No GPU in a kind node: advertise one on the GPU pool's nodes, as the NVIDIA device plugin
# would, so the GPU pool can be scheduled in demos (its benchmarks fail with NoDevice).
for node in $("$KUBECTL" "${ctx[@]}" get nodes -l nvidia.com/gpu.present=true -o name); do
  "$KUBECTL" "${ctx[@]}" patch "$node" --subresource=status --type=json \
    -p '[{"op":"add","path":"/status/capacity/nvidia.com~1gpu","value":"1"}]' >/dev/null
  echo "$node: nvidia.com/gpu: 1 advertised (status patch; no device)"
done
for a in "${archives[@]}"; do
  "$KIND" load image-archive "$a" --name "$KIND_CLUSTER"
done
"$HELM" "${ctx[@]/--context/--kube-context}" upgrade --install hybridplace "$here/charts/hybridplace" \
  -n hybridplace-system --create-namespace --wait --timeout 5m \
  --set image.pullPolicy=Never "${gpu_worker[@]}" ${HELM_ARGS:-}
"$KUBECTL" "${ctx[@]}" apply -f "$here/examples/hardwarepools.yaml"
echo "kind cluster '$KIND_CLUSTER' is up with hybridplace $VERSION; next: helm --kube-context kind-$KIND_CLUSTER test hybridplace -n hybridplace-system"
