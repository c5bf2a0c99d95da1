#!/bin/sh
# Install the watchdog into an image, as root, from a directory holding its wheel and this
# recipe's entrypoint (deploy/image/Containerfile runs it in Ceph's image; the test suite in
# Debian roots of each Ceph release).
#
# * Python >= 3.11 from the image's own packages: the image's python3 when it is new enough
#   (Debian trixie: 3.13), else its python3.11 (EL9, Ceph's images: dnf install python3.11;
#   EL8: the same, from AppStream).
# * A venv in /opt/osd-watchdog with the wheel and its dependencies (pip, from the index or
#   from wheels placed beside it in the directory), /usr/local/bin/osd-watchdog linked to it.
# * /usr/local/bin/osd-watchdog-entrypoint: writes the Ceph client config from what Rook
#   mounts (entrypoint.sh), then runs osd-watchdog.
#
# Usage: install.sh DIR
set -eu

dir=${1:?usage: install.sh DIR (holding the wheel and entrypoint.sh)}
wheel=$(ls "$dir"/ceph_osd_watchdog-*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || { echo "install.sh: no ceph_osd_watchdog wheel in $dir" >&2; exit 1; }

new_enough() {
    "$1" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

python=""
for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 && new_enough "$candidate"; then
        python=$(command -v "$candidate")
        break
    fi
done
if [ -z "$python" ]; then
    if command -v dnf >/dev/null 2>&1; then
        dnf install -y python3.11 python3.11-pip >/dev/null
        dnf clean all >/dev/null
    elif command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
    fi
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && new_enough "$candidate"; then
            python=$(command -v "$candidate")
            break
        fi
    done
fi
[ -n "$python" ] || { echo "install.sh: no Python >= 3.11 with venv in this image" >&2; exit 1; }

"$python" -m venv /opt/osd-watchdog
/opt/osd-watchdog/bin/pip install --quiet --no-cache-dir --disable-pip-version-check \
    --find-links "$dir" "$wheel"
ln -sf /opt/osd-watchdog/bin/osd-watchdog /usr/local/bin/osd-watchdog
install -m 0755 "$dir/entrypoint.sh" /usr/local/bin/osd-watchdog-entrypoint
/usr/local/bin/osd-watchdog --help >/dev/null
echo "install.sh: osd-watchdog installed with $("$python" --version)"
