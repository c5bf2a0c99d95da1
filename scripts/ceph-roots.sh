#!/usr/bin/env bash
# Build the Debian roots of the Ceph releases the end-to-end suite runs against: Pacific 16
# from bookworm, Reef 18 from trixie, Tentacle 20 from sid. Reef and Tentacle run from their
# roots (in cephadm-style containers); Pacific also runs from the host's own packages. Each
# root also holds what the osd-watchdog package depends on (Debian's own python3 packages of
# that release) and what a booted host needs (systemd, D-Bus, polkit), so the release's
# packages can be installed into a fresh copy of it (an overlay) with no download, and the
# trixie root can be booted with systemd-nspawn.
#
# Each root lives in $OSD_WATCHDOG_ROOTS (default /var/cache/osd-watchdog/roots), outside the
# checkout, under a name carrying a hash of what went into it: change the package list or the
# suite below and the next run builds a new root beside the old one (and removes the old one).
# A root is built into a temporary directory and renamed into place only when complete, so an
# interrupted build never leaves a half root that a later run would trust.
#
# Usage: scripts/ceph-roots.sh [RELEASE...]    (default: every release; prints one
#        "RELEASE PATH" line per root, built or found)
set -euo pipefail

CACHE=${OSD_WATCHDOG_ROOTS:-/var/cache/osd-watchdog/roots}
CEPH=ceph-osd,ceph-mon,ceph-mgr,ceph-common,python3-rados,iproute2,procps,bc,python3
# osd-watchdog's Depends (debian/control, as dh_python3 fills them in) and python3-venv for
# the image recipe (deploy/image/install.sh makes a venv with the image's own Python).
WATCHDOG=adduser,python3-typer,python3-psutil,python3-prometheus-client,python3-requests
WATCHDOG=$WATCHDOG,python3-yaml,python3-bcrypt,python3-venv
BOOT=systemd,systemd-sysv,dbus,polkitd
PACKAGES=$CEPH,$WATCHDOG,$BOOT
declare -A SUITE=([16]=bookworm [18]=trixie [20]=sid)
# Debian trixie's Ceph 18.2.7 mgr loads no Python module at all, Ceph's own or ours: mgr_util
# imports bcrypt, and trixie's bcrypt (4.x, Rust/PyO3) refuses a second sub-interpreter
# ("PyO3 modules do not yet support subinterpreters"). Ceph's own Reef images ship bcrypt 3.x
# (C); the 18 root gets the same, so it runs Reef as cephadm users run it.
BCRYPT_18=bcrypt==3.2.2
# sid's Release file is often past its Valid-Until date; a root is a test fixture, not a host.
APTOPT='Acquire::Check-Valid-Until "false"'
# Bump when what this script does to a root changes, so cached roots are built again.
LAYOUT=2

# pip for the one wheel above: the checkout's venv (make install made it), or the system's.
PIP=${PIP:-$(dirname "$0")/../.venv/bin/pip}
[ -x "$PIP" ] || PIP="python3 -m pip"
releases=("$@")
[ ${#releases[@]} -gt 0 ] || releases=(16 18 20)

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "ceph-roots: needs root and apt-get to build Debian roots; skipping" >&2
    exit 0
fi
if ! command -v mmdebstrap >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
fi
mkdir -p "$CACHE"

for release in "${releases[@]}"; do
    suite=${SUITE[$release]:-}
    if [ -z "$suite" ]; then
        echo "ceph-roots: unknown release '$release' (known: ${!SUITE[*]})" >&2
        exit 2
    fi
    key=$(printf '%s\n' "$suite" "$PACKAGES" "$APTOPT" "$BCRYPT_18" "$LAYOUT" | sha256sum | cut -c1-12)
    root="$CACHE/ceph$release-$suite-$key"
    if [ ! -x "$root/usr/bin/ceph-osd" ]; then
        # Roots for this release built from another package list: no test uses them any more.
        find "$CACHE" -maxdepth 1 -name "ceph$release-*" ! -name "$(basename "$root")" \
            -exec rm -rf {} +
        work=$(mktemp -d "$CACHE/.build-ceph$release-XXXXXX")
        echo "ceph-roots: building Ceph $release from $suite into $root" >&2
        if ! mmdebstrap --quiet --variant=apt --aptopt="$APTOPT" --include="$PACKAGES" \
            "$suite" "$work" >"$work.log" 2>&1; then
            tail -20 "$work.log" >&2
            rm -rf "$work" "$work.log"
            echo "ceph-roots: building the $suite root failed" >&2
            exit 1
        fi
        rm -f "$work.log"
        if [ "$release" = 18 ]; then
            python=$(chroot "$work" python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            wheels=$(mktemp -d)
            $PIP download --quiet --no-deps --only-binary=:all: --python-version "$python" \
                --platform manylinux2014_x86_64 -d "$wheels" "$BCRYPT_18"
            rm -rf "$work/usr/lib/python3/dist-packages/bcrypt"
            python3 -m zipfile -e "$wheels"/bcrypt-*.whl "$work/usr/lib/python3/dist-packages/"
            rm -rf "$wheels"
        fi
        # cephadm's containers run Ceph as uid/gid 167; Debian's packages pick 64045. Give the
        # root's ceph user cephadm's ids, so the containers here look like cephadm's, and
        # hand it what the packages made for it (/var/lib/ceph, /var/log/ceph).
        old_uid=$(awk -F: '$1 == "ceph" {print $3}' "$work/etc/passwd")
        old_gid=$(awk -F: '$1 == "ceph" {print $3}' "$work/etc/group")
        sed -i -E 's/^ceph:x:[0-9]+:[0-9]+:/ceph:x:167:167:/' "$work/etc/passwd"
        sed -i -E 's/^ceph:x:[0-9]+:/ceph:x:167:/' "$work/etc/group"
        find "$work" -xdev -uid "$old_uid" -exec chown -h 167 {} +
        find "$work" -xdev -gid "$old_gid" -exec chgrp -h 167 {} +
        chroot "$work" ceph --version >"$work/CEPH_VERSION"
        mv "$work" "$root"
    fi
    echo "$release $root"
done
