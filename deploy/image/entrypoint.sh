#!/bin/sh
# The image's entrypoint: the Ceph client config the watchdog needs, from what Rook gives
# every client (as Rook's own toolbox does), then osd-watchdog with the container's args.
#
#   OSD_WATCHDOG_MON_ENDPOINTS  a file holding Rook's mon endpoints ("a=10.0.0.1:6789,b=..."),
#                               the ConfigMap rook-ceph-mon-endpoints, key "data"
#   OSD_WATCHDOG_KEY_FILE       a file holding the client's key, the Secret Rook makes for
#                               the CephClient osd-watchdog (rook-ceph-client-osd-watchdog)
#   OSD_WATCHDOG_CLIENT         the client's name (default client.osd-watchdog)
#   OSD_WATCHDOG_CEPH_DIR       where to write ceph.conf and keyring (default /etc/ceph, an
#                               emptyDir: the image's root is read-only)
#
# Without OSD_WATCHDOG_MON_ENDPOINTS nothing is written: a config that names its own
# cluster.conf and cluster.keyring (a mounted Secret) works as is.
set -eu

if [ -n "${OSD_WATCHDOG_MON_ENDPOINTS:-}" ]; then
    dir=${OSD_WATCHDOG_CEPH_DIR:-/etc/ceph}
    client=${OSD_WATCHDOG_CLIENT:-client.osd-watchdog}
    key_file=${OSD_WATCHDOG_KEY_FILE:?OSD_WATCHDOG_KEY_FILE must name the file holding the key}
    # Rook names each mon: "a=10.0.0.1:6789,b=10.0.0.2:6789" -> "10.0.0.1:6789,10.0.0.2:6789"
    mons=$(sed -e 's/[a-z0-9_-]*=//g' "$OSD_WATCHDOG_MON_ENDPOINTS")
    [ -n "$mons" ] || { echo "entrypoint: no mon endpoints in $OSD_WATCHDOG_MON_ENDPOINTS" >&2; exit 1; }
    key=$(tr -d ' \n' <"$key_file")
    [ -n "$key" ] || { echo "entrypoint: $key_file holds no key" >&2; exit 1; }
    umask 077
    printf '[global]\nmon_host = %s\n' "$mons" >"$dir/ceph.conf"
    printf '[%s]\nkey = %s\n' "$client" "$key" >"$dir/keyring"
fi
exec osd-watchdog "$@"
