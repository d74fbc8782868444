#!/usr/bin/env bash
# `make images`: the operator, worker-cpu and worker-cuda images, built from their Dockerfiles by
# buildah (vfs, chroot isolation: no daemon), as OCI archives in $IMAGES_DIR, tagged
# $REGISTRY/<name>:<project version>. Prints each image's size and build time.
#
#   hack/images/build.sh [operator] [worker-cpu] [worker-cuda]     (default: all three)
#
# No registry is reachable here, so:
# - the Dockerfiles' BASE_IMAGE is a Debian base made from Debian packages (hack/images/base.sh);
# - pip in the build installs only from a wheelhouse (no index): the host's pip fills it first,
#   pinned by requirements-dev.txt, and it is mounted into the build with a pip.conf saying so.
# worker-cuda's base is NVIDIA's Triton image (its /opt/tritonserver); it is built only when
# $CUDA_BASE_IMAGE is in buildah's store or can be pulled, else reported as skipped
# (REQUIRE_ALL=1 makes that an error).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/hack/images/common.sh"
IMAGES_DIR=${IMAGES_DIR:-$IMAGES_CACHE/archives}
CUDA_BASE_IMAGE=${CUDA_BASE_IMAGE:-nvcr.io/nvidia/tritonserver:25.10-py3}
mkdir -p "$IMAGES_DIR"
# The host's pip fills the wheelhouses: one of its own in a small venv (the host may have no pip,
# and the project's environment is not this script's to change); PIP=... to use another.
if [ -z "${PIP:-}" ]; then
  [ -x "$IMAGES_CACHE/pip-venv/bin/pip" ] || python3 -m venv "$IMAGES_CACHE/pip-venv" >&2
  PIP=$IMAGES_CACHE/pip-venv/bin/pip
fi
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(operator worker-cpu worker-cuda)

dockerfile_arg() { sed -n "s/^ARG $2=//p" "$1"; }

# The wheels one image's Dockerfile installs, built or downloaded once (keyed by what decides them).
wheelhouse() {
  local name=$1 dockerfile=$2; shift 2
  local key dir
  key=$(cat "$dockerfile" "$here/requirements-dev.txt" "$here/operator/pyproject.toml" \
        "$here/workers/pyproject.toml" | sha256sum | cut -c1-12)
  dir="$IMAGES_CACHE/wheels/$name-$key"
  if [ ! -d "$dir" ]; then
    rm -rf "$dir.partial"
    (cd "$here" && "$PIP" wheel -q -c requirements-dev.txt -w "$dir.partial" "$@" >&2)
    mv "$dir.partial" "$dir"
    # The wheelhouses of this image's earlier Dockerfiles and pins are not used again (3 GB each).
    for old in "$IMAGES_CACHE/wheels/$name"-*; do
      [ "$old" = "$dir" ] || rm -rf "$old"
    done
  fi
  echo "$dir"
}

# The free space one build needs, in GiB: vfs keeps a full copy per layer, so the build's
# container and the committed layer each hold the whole image (worker-cpu: 6.2 GB, most of it
# the CUDA libraries PyPI's torch depends on), beside its wheelhouse and its archive.
need_gib() { case $1 in operator) echo 2 ;; worker-cpu) echo 16 ;; *) echo 40 ;; esac; }
free_gib() { df -P -k "$IMAGES_CACHE" | awk 'NR == 2 { print int($4 / 1048576) }'; }
# Before a build: its tag's previous image, and any image an earlier build left untagged (in vfs
# each is a full copy: keeping them filled a 250 GB disk after a few rebuilds). Only this
# project's own store ($IMAGES_CACHE/storage) is touched.
drop_previous() {
  if bah inspect --type image "$1" >/dev/null 2>&1; then bah rmi -f "$1" >/dev/null; fi
  bah rmi --prune >/dev/null 2>&1 || true
}

declare -a figures
built=0 skipped=()
for name in "${images[@]}"; do
  t0=$SECONDS
  image="$REGISTRY/$name:$VERSION"
  mounts=() args=()
  case $name in
    operator)
      dockerfile=$here/operator/Dockerfile context=$here
      wheels=$(wheelhouse "$name" "$dockerfile" "setuptools>=77" ./operator) ;;
    worker-cpu)
      dockerfile=$here/workers/Dockerfile.cpu context=$here/workers
      wheels=$(wheelhouse "$name" "$dockerfile" "setuptools>=77" \
        "torch==$(dockerfile_arg "$dockerfile" TORCH_VERSION)" \
        "nvidia-pytriton==$(dockerfile_arg "$dockerfile" PYTRITON_VERSION)" \
        "tritonclient[http,grpc]==$(dockerfile_arg "$dockerfile" TRITONCLIENT_VERSION)") ;;
    worker-cuda)
      dockerfile=$here/workers/Dockerfile.cuda context=$here/workers wheels=
      if ! bah inspect --type image "$CUDA_BASE_IMAGE" >/dev/null 2>&1 \
         && ! pull_error=$(bah pull -q "$CUDA_BASE_IMAGE" 2>&1 >/dev/null); then
        echo "worker-cuda: SKIPPED: its base $CUDA_BASE_IMAGE (NVIDIA Triton, /opt/tritonserver) is not in" \
             "buildah's store and cannot be pulled here: ${pull_error##*$'\n'}" >&2
        skipped+=(worker-cuda)
        continue
      fi
      args+=(--build-arg "BASE_IMAGE=$CUDA_BASE_IMAGE") ;;
    *) echo "unknown image '$name' (operator, worker-cpu, worker-cuda)" >&2; exit 2 ;;
  esac
  if [ "$name" != worker-cuda ]; then
    base=$("$here/hack/images/base.sh")
    args+=(--build-arg "BASE_IMAGE=$base")
  fi
  if [ -n "$wheels" ]; then
    conf=$(mktemp "$IMAGES_CACHE/pip.conf.XXXXXX")
    printf '[global]\nno-index = true\nfind-links = /wheels\n' >"$conf"
    mounts=(-v "$wheels:/wheels:ro" -v "$conf:/etc/pip.conf:ro")
  fi
  echo "=== $image (from ${dockerfile#"$here"/})" >&2
  archive="$IMAGES_DIR/$name-$VERSION.tar"
  drop_previous "$image"
  rm -f "$archive"
  free=$(free_gib) need=$(need_gib "$name")
  if [ "$free" -lt "$need" ]; then
    echo "$name: needs about $need GiB free in $IMAGES_CACHE (buildah's vfs store keeps a full copy" \
         "per layer); $free GiB free there. Free some space, or set IMAGES_CACHE to a bigger disk." >&2
    [ -z "${conf:-}" ] || rm -f "$conf"
    exit 1
  fi
  bah bud --isolation chroot --layers=false --quiet "${args[@]}" "${mounts[@]}" \
    -f "$dockerfile" -t "$image" "$context" >&2
  [ -z "${conf:-}" ] || rm -f "$conf"
  bah push --quiet "$image" "oci-archive:$archive:$image" >&2
  seconds=$((SECONDS - t0))
  figures+=("$(printf '%-40s archive %6d MiB  unpacked %-9s built in %4d s' "$image" \
    $(( $(stat -c %s "$archive") / 1048576 )) "$(bah images --format '{{.Size}}' "$image" | head -1)" "$seconds")")
  built=$((built + 1))
done
echo "=== $built image(s) in $IMAGES_DIR ($(date -u +%F), $(nproc) cores)"
printf '  %s\n' "${figures[@]}"
[ ${#skipped[@]} -eq 0 ] || echo "  skipped: ${skipped[*]} (see above)"
[ ${#skipped[@]} -eq 0 ] || [ -z "${REQUIRE_ALL:-}" ] || exit 1
