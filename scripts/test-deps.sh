#!/usr/bin/env bash
# Install the system packages the test suite needs: Ceph (a real throw-away cluster for the
# end-to-end tests, and the librados binding), Prometheus (promtool, real scrapes), Alertmanager
# (amtool for the example routes), blackbox_exporter (the baseline every benchmark compares
# against; its smoke run is part of the suite), systemd (systemd-analyze for the unit), iproute2
# (ss, ip netns), nftables (a path broken between network namespaces), Debian's packaging
# tools (the release's .debs are built and checked with lintian in the suite) and
# systemd-container (systemd-nspawn boots a Debian root to run the shipped unit for real).
# Runs apt-get only as root on a Debian-like host; elsewhere it says what is missing, and the
# tests that need it skip -- except under CI=true, where they fail instead.
set -euo pipefail

# What the tests need, and the command that proves each is there.
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || missing+=(prometheus-blackbox-exporter)
command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ceph-mon >/dev/null 2>&1 || missing+=(ceph-mon)
command -v ceph-osd >/dev/null 2>&1 || missing+=(ceph-osd)
command -v ceph-mgr >/dev/null 2>&1 || missing+=(ceph-mgr)
command -v ceph >/dev/null 2>&1 || missing+=(ceph-common)
ls /usr/lib/python3/dist-packages/rados.*.so >/dev/null 2>&1 || missing+=(python3-rados)
command -v dpkg-buildpackage >/dev/null 2>&1 || missing+=(dpkg-dev)
command -v dh >/dev/null 2>&1 || missing+=(debhelper)
command -v dh_python3 >/dev/null 2>&1 || missing+=(dh-python)
[ -e /usr/share/dh-python/dhpython/build/plugin_pyproject.py ] \
    || missing+=(pybuild-plugin-pyproject python3-all python3-setuptools)
command -v lintian >/dev/null 2>&1 || missing+=(lintian)
command -v systemd-nspawn >/dev/null 2>&1 || missing+=(systemd-container)

if [ ${#missing[@]} -eq 0 ]; then
    :  # everything is there
elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d 101: install, but do not start the distribution's own services (Prometheus,
    # Alertmanager, Ceph): the tests start what they need themselves.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "not root or no apt-get: missing ${missing[*]}; tests needing them will skip" >&2
fi

# The other Ceph releases the end-to-end suite runs (Reef 18, Tentacle 20): Debian roots built
# once and cached outside the checkout (scripts/ceph-roots.sh says where and when they rebuild).
"$(dirname "$0")/ceph-roots.sh" >/dev/null
