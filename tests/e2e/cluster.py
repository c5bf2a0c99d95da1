"""A throw-away real Ceph cluster for end-to-end tests: 1 mon, 1 mgr, N memstore OSDs.

Everything lives in one temporary directory and on 127.0.0.1 (or a given address); daemons run
in the foreground as our own children (no systemd), so each is stopped by its pid, even when a
test fails.
Built from Debian's packages (ceph-mon, ceph-mgr, ceph-osd, ceph-common): the host's own
(Pacific 16, bare daemons) or a Debian root of another release, its daemons in cephadm-style
containers (tests/e2e/releases.py).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.releases import HOST, MARK, Release
from tests.scoped import Scoped

BINARIES = ("ceph", "ceph-mon", "ceph-mgr", "ceph-osd", "ceph-authtool", "monmaptool")
STOCK_MODULES = Path("/usr/share/ceph/mgr")  # where Debian's ceph-mgr installs its modules
OUR_MODULE = Path(__file__).resolve().parents[2] / "mgr" / "osd_watchdog"


class ClusterError(RuntimeError):
    """The cluster could not be built or did not reach the state asked for."""


def missing_binaries() -> list[str]:
    return [b for b in BINARIES if shutil.which(b) is None]


_no_caches = shutil.ignore_patterns("__pycache__")


def daemon_pids(fsid: str, name: str) -> list[int]:
    """Host pids of the running daemon ``name`` (``osd.1``) of the cluster ``fsid``.

    Found by the mark in its environment and its command line, never by a pid file: inside a
    container a pid file holds the namespace's pid, which means another process on the host.
    """
    kind, _, ident = name.partition(".")
    mark = f"{MARK}={fsid}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if not argv[0].endswith(f"ceph-{kind}".encode()):
                continue
            if mark not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue  # gone meanwhile
        pairs = list(itertools.pairwise(w.decode() for w in argv))
        if ("-i", ident) in pairs or ("-n", name) in pairs:
            found.append(int(entry.name))
    return found


def _free_port(address: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def spawn(
    root: Path, fsid: str, argv: list[str], name: str, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a daemon of the cluster in ``root``, marked as the cluster's, output to its log."""
    with (root / "log" / f"{name}.stdout").open("ab") as log:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, MARK: fsid, **popen.pop("env", {})},
            **popen,
        )


@dataclass
class Daemon:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class CephCluster(Scoped):
    """Build with ``start()``; always ``stop()`` (a context manager does both)."""

    root: Path
    osds: int = 3
    name: str = "ceph"
    fsid: str = field(default_factory=lambda: str(uuid.uuid4()))
    daemons: dict[str, Daemon] = field(default_factory=dict)
    with_mgr: bool = True
    # Where every daemon binds: loopback, or an address of a veth the test made so that
    # network namespaces (other "hosts") can reach the cluster.
    address: str = "127.0.0.1"  # or "::1": the daemons then bind IPv6 only
    network: str = "127.0.0.0/8"
    extra_conf: dict[str, str] = field(default_factory=dict)  # more [global] options
    # Put before one daemon's command line: ``nsenter --net=...`` runs an OSD with its sockets
    # in a network namespace of its own, as in a Rook pod.
    prefixes: dict[str, list[str]] = field(default_factory=dict)
    release: Release = HOST
    # The osd_watchdog module from this checkout, put beside Ceph's own; None: the one the
    # release's root has installed (ceph-mgr-osd-watchdog), as a package host has it.
    our_module: Path | None = OUR_MODULE

    @property
    def _host(self) -> str:
        """The address as it goes in an address vector (IPv6 in brackets)."""
        return f"[{self.address}]" if ":" in self.address else self.address

    @property
    def conf(self) -> Path:
        return self.root / "ceph.conf"

    @property
    def keyring(self) -> Path:
        return self.root / "admin.keyring"

    # -- building -------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("run", "log", "mon", "mgr", "osd", "bin"):
            (self.root / sub).mkdir(exist_ok=True)
        self.release.prepare(self.root)
        self._write_ceph_wrapper()
        self.mon_ports = (_free_port(self.address), _free_port(self.address))
        self._write_conf()
        self._make_mon()
        self.start_daemon("mon.a")
        self.wait(lambda: self.ceph_json("mon", "stat") is not None, 30, "the monitor")
        if self.with_mgr:
            self._make_mgr()
            self.start_daemon("mgr.x")
        for osd_id in range(self.osds):
            self._make_osd(osd_id)
            self.start_daemon(f"osd.{osd_id}")
        self.wait(lambda: self.up_osds() == set(range(self.osds)), 60, "every OSD up")

    def _write_conf(self) -> None:
        v2, v1 = self.mon_ports
        r = self.root
        self.conf.write_text(
            f"""[global]
fsid = {self.fsid}
mon host = [v2:{self._host}:{v2},v1:{self._host}:{v1}]
public network = {self.network}
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
run dir = {r}/run
admin socket = {r}/run/$cluster-$name.asok
log file = {r}/log/$name.log
pid file = {r}/run/$name.pid
crash dir = {r}/crash
mon data = {r}/mon/$cluster-$id
mgr data = {r}/mgr/$cluster-$id
osd data = {r}/osd/$cluster-$id
osd objectstore = memstore
memstore device bytes = 268435456
osd pool default size = 3
osd pool default min size = 2
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon allow pool delete = true
mon warn on pool no redundancy = false
# Keep a real OSD's own timers, but do not let a test host's slowness look like a failure.
osd op thread timeout = 60
# SIGTERM must save memstore's contents, so a stopped OSD can start again.
osd fast shutdown = false
{self._initial_modules()}# The test host's disk is not the cluster's: never HEALTH_WARN for it.
mon data avail warn = 1
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
ms bind msgr2 = true
{self._extra_lines()}
[client]
keyring = {self.keyring}
[mon]
keyring = $mon_data/keyring
[mgr]
keyring = $mgr_data/keyring
mgr module path = {self._module_path()}
[osd]
keyring = $osd_data/keyring
"""
        )

    def _initial_modules(self) -> str:
        # restful is gone from Tentacle, and cannot load from Debian's Reef (PyO3 cryptography).
        return f"mgr initial modules = {'iostat' if self.release.contained else 'restful'}\n"

    def _extra_lines(self) -> str:
        options = dict(self.extra_conf)
        if ":" in self.address:
            options |= {"ms bind ipv6": "true", "ms bind ipv4": "false"}
        return "".join(f"{key} = {value}\n" for key, value in options.items())

    def _module_path(self) -> Path:
        """Ceph's own mgr modules and ours side by side, as an operator installs it."""
        path = self.root / "mgr-modules"
        path.mkdir(exist_ok=True)
        for entry in self.release.stock_modules.iterdir():
            link = path / entry.name
            if not link.is_symlink():
                # The path as the mgr sees it: inside a root, the root's own modules.
                link.symlink_to(STOCK_MODULES / entry.name)
        if self.our_module is None:
            return path
        ours = path / self.our_module.name
        if ours.is_symlink():
            ours.unlink()  # the release's own copy, if it has one: ours replaces it
        if self.release.contained:
            # A container sees nothing of the checkout: install a copy, as an image would.
            shutil.copytree(self.our_module, ours, dirs_exist_ok=True, ignore=_no_caches)
        elif not ours.exists():
            ours.symlink_to(self.our_module)
        return path

    def _write_ceph_wrapper(self) -> None:
        """bin/ceph: this release's CLI, for the watchdog's ``cluster.ceph_command``.

        A real host's watchdog uses the host's own client, which matches its cluster; here the
        host's Ceph 16 client cannot even read a Ceph 20 keyring (a newer key type).
        """
        wrapper = self.root / "bin" / "ceph"
        argv = self.release.command(self.root, ["ceph"], forward=True)
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.join(argv)} "$@"\n')
        wrapper.chmod(0o755)

    @property
    def ceph_command(self) -> str:
        """The CLI as the watchdog's config names it (``cluster.ceph_command``)."""
        return str(self.root / "bin" / "ceph") if self.release.contained else "ceph"

    def _run(self, *args: str, timeout: float = 60) -> str:
        argv = self.release.command(self.root, list(args))
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if out.returncode != 0:
            raise ClusterError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()}")
        return out.stdout

    def _make_mon(self) -> None:
        mon_keyring = self.root / "mon.keyring"
        self._run(
            "ceph-authtool",
            "--create-keyring",
            str(mon_keyring),
            "--gen-key",
            "-n",
            "mon.",
            "--cap",
            "mon",
            "allow *",
        )
        self._run(
            "ceph-authtool",
            "--create-keyring",
            str(self.keyring),
            "--gen-key",
            "-n",
            "client.admin",
            "--cap",
            "mon",
            "allow *",
            "--cap",
            "osd",
            "allow *",
            "--cap",
            "mgr",
            "allow *",
            "--cap",
            "mds",
            "allow *",
        )
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.keyring))
        v2, v1 = self.mon_ports
        monmap = self.root / "monmap"
        self._run(
            "monmaptool",
            "--create",
            "--fsid",
            self.fsid,
            "--addv",
            "a",
            f"[v2:{self._host}:{v2},v1:{self._host}:{v1}]",
            str(monmap),
        )
        self._run(
            "ceph-mon",
            "-c",
            str(self.conf),
            "--mkfs",
            "-i",
            "a",
            "--monmap",
            str(monmap),
            "--keyring",
            str(mon_keyring),
        )
        self._add_daemon("mon.a", ["ceph-mon", "-f", "-c", str(self.conf), "-i", "a"])

    def _make_mgr(self, mgr_id: str = "x") -> None:
        data = self.root / "mgr" / f"{self.name}-{mgr_id}"
        data.mkdir(parents=True, exist_ok=True)
        self.ceph(
            "auth",
            "get-or-create",
            f"mgr.{mgr_id}",
            "mon",
            "allow profile mgr",
            "osd",
            "allow *",
            "mds",
            "allow *",
            "-o",
            str(data / "keyring"),
        )
        self._add_daemon(f"mgr.{mgr_id}", ["ceph-mgr", "-f", "-c", str(self.conf), "-i", mgr_id])

    def add_mgr(self, mgr_id: str) -> None:
        """Another mgr: a standby while the first is active (for failover tests)."""
        self._make_mgr(mgr_id)
        self.start_daemon(f"mgr.{mgr_id}")

    def _make_osd(self, osd_id: int) -> None:
        osd_uuid = str(uuid.uuid4())
        created = self.ceph("osd", "new", osd_uuid).strip()
        if created != str(osd_id):
            raise ClusterError(f"ceph osd new gave id {created}, expected {osd_id}")
        data = self.root / "osd" / f"{self.name}-{osd_id}"
        data.mkdir(parents=True, exist_ok=True)
        key = self._run("ceph-authtool", "--gen-print-key").strip()
        (data / "keyring").write_text(f"[osd.{osd_id}]\n\tkey = {key}\n")
        # The key first: mkfs already asks the monitor for its config as osd.N.
        self.ceph(
            "auth",
            "add",
            f"osd.{osd_id}",
            "-i",
            str(data / "keyring"),
            "osd",
            "allow *",
            "mon",
            "allow profile osd",
            "mgr",
            "allow profile osd",
        )
        self._run(
            "ceph-osd",
            "-c",
            str(self.conf),
            "-i",
            str(osd_id),
            "--mkfs",
            "--osd-uuid",
            osd_uuid,
            "--key",
            key,
        )
        self._add_daemon(
            f"osd.{osd_id}", ["ceph-osd", "-f", "-c", str(self.conf), "-i", str(osd_id)]
        )

    # -- running --------------------------------------------------------------------------

    def _add_daemon(self, name: str, bare: list[str]) -> None:
        argv = [*self.prefixes.get(name, []), *self.release.daemon(self.root, name, bare)]
        self.daemons[name] = Daemon(name, argv)
        # What a restart from another process needs to start the same daemon the same way.
        (self.root / "cluster.json").write_text(
            json.dumps({"fsid": self.fsid, "daemons": {n: d.argv for n, d in self.daemons.items()}})
        )

    def start_daemon(self, name: str, **popen: Any) -> subprocess.Popen[bytes]:
        daemon = self.daemons[name]
        self.release.chown(self.root)
        daemon.proc = spawn(self.root, self.fsid, daemon.argv, name, **popen)
        return daemon.proc

    def pid(self, name: str) -> int:
        """The running daemon's host pid: ours, or one a restart started."""
        pids = daemon_pids(self.fsid, name)
        if not pids:
            raise ClusterError(f"{name} is not running")
        return pids[0]

    def stop_daemon(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        """Stop one daemon by its pid; returns its exit status (-N: killed by signal N)."""
        proc = self.daemons[name].proc
        if proc is None:
            return None
        if proc.poll() is None:
            # The daemon itself, not a container's init: it must get the signal as it would
            # from systemd or podman.
            for pid in daemon_pids(self.fsid, name) or [proc.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return self.exit_status(name)

    def exit_status(self, name: str, timeout: float | None = None) -> int:
        """Wait for the daemon to end; its status as Popen gives it for a bare process.

        A container's init exits 128+N when its daemon died of signal N.
        """
        proc = self.daemons[name].proc
        assert proc is not None
        code = proc.wait(timeout=timeout)
        if self.release.contained and code > 128:
            return -(code - 128)
        return code

    def stop(self) -> None:
        """Stop every daemon this cluster started: OSDs first, the monitor last."""
        order = sorted(self.daemons, key=lambda n: {"osd": 0, "mgr": 1, "mon": 2}[n[:3]])
        for name in order:
            self.stop_daemon(name, timeout=15)
        self._stop_adopted()
        self.release.forget(self.root)

    def _stop_adopted(self) -> None:
        """Daemons started outside this object (a restart by the watchdog), by their mark."""
        for name in self.daemons:
            for pid in daemon_pids(self.fsid, name):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    # -- asking ---------------------------------------------------------------------------

    def ceph(self, *args: str, timeout: float = 30) -> str:
        return self._run(
            "ceph", "-c", str(self.conf), "--connect-timeout", "10", *args, timeout=timeout
        )

    def ceph_json(self, *args: str) -> Any:
        try:
            return json.loads(self.ceph(*args, "-f", "json", timeout=15))
        except (ClusterError, subprocess.TimeoutExpired, json.JSONDecodeError):
            return None

    def wait_mgr_module(self, name: str, timeout: float = 60) -> None:
        """Until an active mgr has told the monitors it has module ``name``.

        Before that the monitors refuse the module's options ("unrecognized config option
        'mgr/NAME/...'"); on a loaded host that is seconds after the cluster answers.
        """

        def known() -> bool:
            dump = self.ceph_json("mgr", "dump") or {}
            names = {m.get("name") for m in dump.get("available_modules", [])}
            return bool(dump.get("available")) and name in names

        self.wait(known, timeout, f"the mgr announcing its {name} module")

    def up_osds(self) -> set[int]:
        dump = self.ceph_json("osd", "dump")
        if dump is None:
            return set()
        return {o["osd"] for o in dump["osds"] if o["up"]}

    def clean(self) -> bool:
        """Every PG active+clean (and known: ok-to-stop cannot judge unknown ones)."""
        return re.search(r"(\d+) pgs: \1 active\+clean;", self.ceph("pg", "stat")) is not None

    def wait_clean(self, timeout: float = 60) -> None:
        self.wait(self.clean, timeout, "every PG active+clean")

    def client_key(self, name: str, *caps: str) -> Path:
        """A keyring for a new cephx client with exactly these caps, e.g. ("mon", "allow r")."""
        keyring = self.root / f"{name}.keyring"
        self.ceph("auth", "get-or-create", name, *caps, "-o", str(keyring))
        return keyring

    def wait_for_restful(self, timeout: float = 30) -> str:
        """The mgr restful module's URL, once it serves."""
        found: list[str] = []

        def serving() -> bool:
            services = self.ceph_json("mgr", "services") or {}
            found[:] = [services["restful"]] if "restful" in services else []
            return bool(found)

        self.wait(serving, timeout, "the restful module")
        return found[0]

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)  # polling the monitor; bounded by the deadline
        raise ClusterError(f"timed out after {timeout}s waiting for {what}")
