# Shared by hack/images/*.sh: where images are built and kept, and buildah's flags here.
# buildah with the vfs storage driver and chroot isolation needs no daemon, no overlay mounts and
# no user namespaces (none of which these machines have), at the cost of a full copy per layer.
HP_CACHE=${HP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridplace}
IMAGES_CACHE=${IMAGES_CACHE:-$HP_CACHE/images}
mkdir -p "$IMAGES_CACHE"
# The version every image is tagged with: the project's (operator/pyproject.toml), which the
# chart's appVersion and its worker images in values.yaml match (tests/unit/test_image_versions.py).
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/operator/pyproject.toml")
REGISTRY=${REGISTRY:-ghcr.io/hybridplace}
# The tag changes with what the base holds, so a cached older base is not reused (-2: libpython3.11).
BASE_IMAGE=${BASE_IMAGE:-localhost/hybridplace/debian-python:bookworm-3.11-2}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-"deb http://deb.debian.org/debian-security bookworm-security main"}
bah() {
  buildah --storage-driver vfs --root "$IMAGES_CACHE/storage" --runroot "$IMAGES_CACHE/run" "$@"
}
