#!/usr/bin/env bash
# The images' base, made from Debian packages (no registry to pull from): Debian 12 minbase with
# Python 3.11, pip and ca-certificates, laid out like the python:3.11-slim-bookworm image the
# Dockerfiles name (`python` and `pip` on PATH, pip installing into /usr/local), so the same
# Dockerfiles build on it. Committed to buildah's store (vfs) as $BASE_IMAGE; reused when present.
#
#   hack/images/base.sh            build (or reuse) the base; prints its name
#   FORCE=1 hack/images/base.sh    build it again
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/hack/images/common.sh"

if [ -z "${FORCE:-}" ] && bah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "$BASE_IMAGE"
  exit 0
fi
work=$(mktemp -d "$IMAGES_CACHE/base.XXXXXX")
trap 'rm -rf "$work"' EXIT
t0=$SECONDS
# minbase: Essential packages and apt; python3-pip brings setuptools and wheel; python-is-python3
# gives `python`; passwd gives useradd (the operator's Dockerfile creates its user); libpython3.11
# is what Triton's python-backend stub links to (minbase leaves Recommends out, and only
# python3-dev, a Recommends of pip, brought it: without it the worker image could not serve).
mmdebstrap --variant=minbase --mode=root --format=tar \
  --include=python3,libpython3.11,python3-pip,python3-venv,python-is-python3,ca-certificates,passwd \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --customize-hook='rm -f "$1"/usr/lib/python3.11/EXTERNALLY-MANAGED' \
  --customize-hook='ln -sf pip3 "$1"/usr/bin/pip' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  bookworm "$work/rootfs.tar" "$DEBIAN_MIRROR" "$DEBIAN_SECURITY_MIRROR" >&2
ctr=$(bah from scratch)
bah add "$ctr" "$work/rootfs.tar" / >&2
bah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin --env LANG=C.UTF-8 \
  --cmd python3 --label org.opencontainers.image.description="Debian 12 minbase + Python 3.11 (hybridplace base)" \
  "$ctr" >&2
bah commit --rm "$ctr" "$BASE_IMAGE" >&2
echo "base image $BASE_IMAGE built in $((SECONDS - t0)) s" >&2
echo "$BASE_IMAGE"
