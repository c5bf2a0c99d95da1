#!/usr/bin/env bash
# Build what a release ships, from this checkout, into OUTDIR (default dist/):
#   * the sdist and the wheel (python -m build), for pip and for the container image;
#   * the Debian packages osd-watchdog and ceph-mgr-osd-watchdog (dpkg-buildpackage, with
#     debhelper and dh-python), checked with lintian.
# The tests install exactly these files. Needs the build tools the test set-up installs
# (scripts/test-deps.sh): python3 -m build in the venv, debhelper, dh-python, lintian.
#
# Usage: scripts/build-release.sh [OUTDIR]
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$here/dist}")
python=${PYTHON:-$here/.venv/bin/python}
[ -x "$python" ] || python=python3
mkdir -p "$out"

# The tree as git sees it (tracked files and new ones not ignored), without the venv or
# caches: what a clean clone builds.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
src="$work/ceph-osd-watchdog"
mkdir "$src"
(cd "$here" && git ls-files -z --cached --others --exclude-standard \
    | xargs -0 -I{} sh -c 'test -e "{}" || test -L "{}" && echo "{}"' \
    | tar -cf - -T -) | tar -xf - -C "$src"

"$python" -m build --sdist --wheel --outdir "$out" "$src" >"$work/build.log" 2>&1 \
    || { tail -30 "$work/build.log" >&2; exit 1; }

# Debian's own Python and tools, not a python3 earlier on PATH (pyenv, a venv).
(cd "$src" && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b >"$work/deb.log" 2>&1) \
    || { tail -40 "$work/deb.log" >&2; exit 1; }
cp "$work"/*.deb "$out"/
# Lintian on the packages as built: errors and warnings fail the build.
lintian --fail-on error,warning \
    "$work"/*.changes >&2
ls "$out"
