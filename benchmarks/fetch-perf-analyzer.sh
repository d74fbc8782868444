#!/usr/bin/env bash
# Fetches NVIDIA perf_analyzer (the reference our triton engine is checked against) into the cache
# and prints the directory holding `perf_analyzer` and `env.sh` (which sets LD_LIBRARY_PATH).
#
# perf_analyzer ships inside the tritonclient==2.41.0 wheel (later wheels dropped it). It links
# libb64 (Debian's libb64-0d, unpacked with dpkg -x, so the system is not touched) and
# libcudart.so.12 (PyPI's nvidia-cuda-runtime-cu12; it runs without a GPU). Nothing is installed
# system-wide and nothing lands in the checkout. Usage: benchmarks/fetch-perf-analyzer.sh [python]
set -euo pipefail
python=${1:-python3}
cache=${HP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridplace}
TRITONCLIENT_VERSION=2.41.0
CUDART_VERSION=12.6.77
dir="$cache/perf-analyzer-$TRITONCLIENT_VERSION"
if [ -x "$dir/perf_analyzer" ] && [ -f "$dir/env.sh" ]; then echo "$dir"; exit 0; fi
mkdir -p "$dir/dl" "$dir/lib"
exec 9>"$dir/.lock"; flock 9
cd "$dir/dl"
echo "fetching perf_analyzer (tritonclient==$TRITONCLIENT_VERSION) into $dir" >&2
"$python" -m pip download -q --no-deps --only-binary=:all: -d . "tritonclient==$TRITONCLIENT_VERSION" \
  --platform manylinux1_x86_64 >&2
"$python" -m pip download -q --no-deps --only-binary=:all: -d . \
  "nvidia-cuda-runtime-cu12==$CUDART_VERSION" --platform manylinux2014_x86_64 >&2
if ! ls libb64-0d_*.deb >/dev/null 2>&1; then
  apt-get download libb64-0d >&2 || { apt-get update -qq >&2 && apt-get download libb64-0d >&2; }
fi
rm -rf x && mkdir x
"$python" - <<'PY'
import glob, zipfile
for whl in glob.glob("*.whl"):
    with zipfile.ZipFile(whl) as z:
        for n in z.namelist():
            if n.endswith("bin/perf_analyzer") or "/lib/libcudart.so" in n:
                z.extract(n, "x")
PY
dpkg -x libb64-0d_*.deb x/deb
cp "$(find x -path '*bin/perf_analyzer' | head -1)" "$dir/perf_analyzer"
chmod +x "$dir/perf_analyzer"
find x -name 'libcudart.so*' -exec cp {} "$dir/lib/" \;
find x/deb -name 'libb64.so*' -exec cp -P {} "$dir/lib/" \;
echo "export LD_LIBRARY_PATH=\"$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\"" > "$dir/env.sh"
rm -rf x
missing=$(LD_LIBRARY_PATH="$dir/lib" ldd "$dir/perf_analyzer" | grep 'not found' || true)
if [ -n "$missing" ]; then echo "perf_analyzer still misses libraries: $missing" >&2; exit 1; fi
echo "$dir"
