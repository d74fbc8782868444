#!/usr/bin/env bash
# Creates (or reuses) the Python environment for this checkout and prints its path.
#
# The environment lives outside the checkout, under $HP_CACHE, keyed by a hash of
# requirements-dev.txt and the Python version, so a fresh clone on the same machine reuses
# it. The two project packages are installed editable; a stamp records which checkout they
# point at, and they are re-pointed (a couple of seconds, no downloads) when it differs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${HP_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hybridplace}
python=${PYTHON:-python3}
"$python" -c 'import sys; assert sys.version_info >= (3, 11), "hybridplace needs Python >= 3.11"' >&2
key=$( { cat "$here/requirements-dev.txt"; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-12)
venv="$cache/venv-$key"
mkdir -p "$cache"
# One creator at a time: parallel make invocations wait here instead of racing.
exec 9>"$cache/.venv-$key.lock"
flock 9
if [ ! -f "$venv/.complete" ]; then
  echo "creating Python environment $venv (first run downloads torch and friends: minutes)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q -r "$here/requirements-dev.txt" >&2
  touch "$venv/.complete"
  # The environments of older requirements (6 GB each, torch's CUDA libraries) are not used
  # again once the requirements move on: drop those no make has used for 2 days, unless one is
  # being created (its lock held).
  for old in "$cache"/venv-*; do
    [ "$old" != "$venv" ] && [ -d "$old" ] || continue
    [ -z "$(find "$old" -maxdepth 1 \( -name .hp-used -o -name .hp-src -o -name .complete \) \
            -mmin -2880 2>/dev/null)" ] || continue
    (exec 8>"$cache/.$(basename "$old").lock"; flock -n 8 && rm -rf "$old" \
      && echo "removed $old (an older environment, unused for 2 days)" >&2) || true
  done
fi
touch "$venv/.hp-used"
if [ "$(cat "$venv/.hp-src" 2>/dev/null)" != "$here" ]; then
  # setuptools warns about every editable install; the warning is not ours to act on.
  PYTHONWARNINGS=ignore "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation \
    -e "$here/operator" -e "$here/workers" >&2
  echo "$here" > "$venv/.hp-src"
fi
echo "$venv"
