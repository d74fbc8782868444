#!/usr/bin/env bash
# Builds one of the local cluster's tools from its pinned wrapper module (cluster/tools/<component>)
# into $HP_CACHE/bin/<component>-<version>/, unless that folder is already complete. Prints the
# folder on stdout. Safe to run concurrently: one builder per component version at a time.
#
# Usage: cluster/tools/build.sh kubernetes|etcd|kwok|helm|prometheus
set -euo pipefail
component=${1:?usage: build.sh kubernetes|etcd|kwok|helm|prometheus}
here=$(cd "$(dirname "$0")" && pwd)
cache=${HP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridplace}
# -mod=readonly: build exactly what go.mod/go.sum pin; never rewrite them.
export GOWORK=off GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0

case $component in
  kubernetes) module=k8s.io/kubernetes ;;
  etcd) module=go.etcd.io/etcd/server/v3 ;;
  kwok) module=sigs.k8s.io/kwok ;;
  helm) module=helm.sh/helm/v3 ;;
  prometheus) module=github.com/prometheus/prometheus ;;
  *) echo "build.sh: unknown component '$component'" >&2; exit 2 ;;
esac
cd "$here/$component"
version=$(go list -m -f '{{.Version}}' "$module")
dest="$cache/bin/$component-$version"
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi

mkdir -p "$cache/bin"
exec 9>"$cache/bin/.$component-$version.lock"
flock 9
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi  # built while we waited

# What `version` subcommands print; otherwise the Kubernetes binaries say v0.0.0-master.
ldflags="-s -w"
case $component in
  kubernetes)
    IFS=. read -r major minor _ <<<"${version#v}"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
      ldflags+=" -X $pkg.gitTreeState=clean"
    done ;;
  helm) ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version" ;;
  prometheus)  # module tag v0.3MM.P is Prometheus 3.MM.P
    IFS=. read -r _ mm patch <<<"${version#v}"
    ldflags+=" -X github.com/prometheus/common/version.Version=3.$((10#$mm - 300)).$patch" ;;
esac

echo "building $component $version into $dest (cold: minutes)" >&2
tmp=$(mktemp -d "$cache/bin/.$component-$version.XXXXXX")
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# One `go build` for all of the component's commands (the `tool` lines of its go.mod), so
# packages they share are compiled once.
go build -trimpath -ldflags "$ldflags" -o "$tmp/" tool
# go names the etcd server after its module path (.../server/v3 -> "server").
if [ "$component" = etcd ]; then mv "$tmp/server" "$tmp/etcd"; fi
{
  echo "component=$component version=$version"
  echo "go=$(go env GOVERSION) seconds=$((SECONDS - start)) built=$(date -u +%FT%TZ)"
  echo "go.sum=$(sha256sum go.sum | cut -c1-16)"
} >"$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "built $component $version in $((SECONDS - start)) s" >&2
echo "$dest"
