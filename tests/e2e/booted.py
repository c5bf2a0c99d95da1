"""A Debian root booted with a real systemd, and a Ceph cluster in it run by systemd units.

``BootedHost`` boots a fresh copy of a root with ``systemd-nspawn -b``: systemd is PID 1 of
the container, with journald, D-Bus and polkitd, sharing the host's network (the OSDs bind
127.0.0.1, and the test's fault injector reaches them from the host by their host pids).
Commands run inside with ``nsenter`` into every namespace of the container's PID 1.

``UnitCluster`` bootstraps a 1 mon, 1 mgr, N memstore OSD cluster in it whose daemons are
started and restarted by systemd, the way each deployment does it:

* a package host: Ceph's own packaged units (``ceph-mon@a``, ``ceph-mgr@x``, ``ceph-osd@N``),
  Ceph's default paths under /var/lib/ceph, the daemons dropping to user ``ceph``;
* a cephadm-style host: one template unit per cluster, ``ceph-<fsid>@.service``, each daemon
  ``ceph-<fsid>@osd.N`` running ``/var/lib/ceph/<fsid>/osd.N/unit.run`` in a PID and mount
  namespace of its own as uid 167, and no user ``ceph`` on the host (cephadm makes none).
  What it is not: podman, and cephadm's images.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.process import unused_port
from tests.scoped import Scoped

NSPAWN = "systemd-nspawn"
PATH = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
CEPHADM_UID = 167


class BootError(RuntimeError):
    """The container did not boot, or a command in it failed."""


class BootedHost(Scoped):
    """A root booted with systemd-nspawn; end it with ``stop()`` (or use ``with``)."""

    def __init__(self, root: Path, name: str, log: Path, binds: dict[Path, str] | None = None):
        self.root = root
        self.name = name  # the container's hostname too
        self.log = log
        self.binds = binds or {}  # host path -> path inside (read-only)
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader = 0  # the container's PID 1, as the host sees it

    def start(self, timeout: float = 90) -> None:
        """Boot it: until its systemd reports it is running."""
        binds = [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        argv = [NSPAWN, "-D", str(self.root), f"--machine={self.name}", "--register=no",
                "--keep-unit", "-b", *binds]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BootError(f"{NSPAWN} exited {self.proc.returncode}: {self.tail()}")
            self.leader = self.leader or _child(self.proc.pid)
            if self.leader:
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in {"running", "degraded"}:
                    return
            time.sleep(0.5)  # polling the container's boot; bounded by the deadline
        raise BootError(f"{self.name} did not finish booting in {timeout:g}s: {self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 120,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """A command inside the container, as root."""
        full = ["nsenter", "-t", str(self.leader), "-a", "--", "env", "-i", PATH,
                "LANG=C.UTF-8", *argv]  # fmt: skip
        out = subprocess.run(full, input=stdin, capture_output=True, text=True,
                             timeout=timeout, check=False)  # fmt: skip
        if check and out.returncode != 0:
            raise BootError(f"{' '.join(argv)} exited {out.returncode}: {out.stderr.strip()}")
        return out

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show`` of a unit: {property: value}."""
        out = self.run("systemctl", "show", unit, *(f"--property={p}" for p in properties))
        return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit, check=False).stdout

    def wait(self, condition: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.5)  # polling the container; bounded by the deadline
        raise BootError(f"timed out after {timeout:g}s waiting for {what}")

    def host_pid(self, pid: int) -> int:
        """The host's pid of a process the container calls ``pid``."""
        ours = Path(f"/proc/{self.leader}/ns/pid").readlink()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if (entry / "ns" / "pid").readlink() != ours:
                    continue
                status = (entry / "status").read_text()
                levels = re.search(r"^NSpid:\s+(.*)$", status, re.MULTILINE)
                if levels and levels.group(1).split()[1:2] == [str(pid)]:
                    return int(entry.name)
        raise BootError(f"no host process is pid {pid} of {self.name}")

    def stop(self) -> None:
        """Power the container off; kill nspawn (our child, by pid) if it does not stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to halt
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)


def _child(pid: int) -> int:
    """The first child of ``pid`` (nspawn's is the container's PID 1), or 0 for none yet."""
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children = task.read_text().split()
            if children:
                return int(children[0])
    return 0


@dataclass
class UnitCluster:
    """A cluster in a booted host whose daemons systemd starts (a package or cephadm host)."""

    host: BootedHost
    cephadm: bool = False
    osds: int = 3
    fsid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def owner(self) -> str:
        """Who the daemons run as: Ceph's packaged units drop to ceph; cephadm's run as 167."""
        return str(CEPHADM_UID) if self.cephadm else "ceph"

    def data(self, daemon: str) -> str:
        """A daemon's data directory inside the host."""
        kind, _, ident = daemon.partition(".")
        if self.cephadm:
            return f"/var/lib/ceph/{self.fsid}/{daemon}"
        return f"/var/lib/ceph/{kind}/ceph-{ident}"

    def unit(self, daemon: str) -> str:
        kind, _, ident = daemon.partition(".")
        if self.cephadm:
            return f"ceph-{self.fsid}@{daemon}.service"
        return f"ceph-{kind}@{ident}.service"

    # -- building ---------------------------------------------------------------------

    def start(self) -> None:
        self.mon_ports = (unused_port(), unused_port())
        self._write("/etc/ceph/ceph.conf", self._conf())
        if self.cephadm:
            self._write(f"/etc/systemd/system/ceph-{self.fsid}@.service", self._cephadm_unit())
            # What cephadm's tmpfiles.d entry makes at boot, for every daemon's sockets.
            self.host.run("install", "-d", "-o", self.owner, "-g", self.owner,
                          f"/var/run/ceph/{self.fsid}")  # fmt: skip
            self.host.run("systemctl", "daemon-reload")
        self._make_mon()
        self._make_mgr()
        for osd_id in range(self.osds):
            self._make_osd(osd_id)
        self.host.wait(lambda: self.up_osds() == set(range(self.osds)), 90, "every OSD up")

    def _conf(self) -> str:
        v2, v1 = self.mon_ports
        data = (
            # cephadm's layout: each daemon's files under the fsid, sockets in its run dir.
            f"run dir = /var/run/ceph/{self.fsid}\n"
            f"mon data = /var/lib/ceph/{self.fsid}/mon.$id\n"
            f"mgr data = /var/lib/ceph/{self.fsid}/mgr.$id\n"
            f"osd data = /var/lib/ceph/{self.fsid}/osd.$id\n"
            if self.cephadm
            else ""  # Ceph's defaults: /var/lib/ceph/TYPE/CLUSTER-ID, as the units expect
        )
        return f"""[global]
fsid = {self.fsid}
mon host = [v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]
public network = 127.0.0.0/8
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd objectstore = memstore
memstore device bytes = 268435456
osd pool default size = 3
osd pool default min size = 2
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
mon warn on pool no redundancy = false
osd op thread timeout = 60
osd fast shutdown = false
mgr initial modules = iostat
mon data avail warn = 1
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
ms bind msgr2 = true
{data}"""

    def _cephadm_unit(self) -> str:
        """cephadm's unit template, with podman's container replaced by a namespaced run."""
        return f"""[Unit]
Description=Ceph %i for {self.fsid}
PartOf=ceph-{self.fsid}.target
After=network-online.target local-fs.target time-sync.target
Wants=network-online.target local-fs.target time-sync.target

[Service]
LimitNOFILE=1048576
LimitNPROC=1048576
ExecStart=/bin/bash /var/lib/ceph/{self.fsid}/%i/unit.run
Restart=on-failure
RestartSec=10s
TimeoutStartSec=200
TimeoutStopSec=120
StartLimitInterval=30min
StartLimitBurst=5

[Install]
WantedBy=ceph-{self.fsid}.target
"""

    def _unit_run(self, daemon: str, binary: str) -> str:
        """What cephadm's unit.run does, without podman: the daemon in PID and mount
        namespaces of its own (as a container's init), as uid 167, in the foreground."""
        return (
            "#!/bin/bash\n"
            "exec unshare --pid --fork --mount --mount-proc --kill-child -- "
            f"/usr/bin/{binary} -n {daemon} -f --setuser {CEPHADM_UID} --setgroup {CEPHADM_UID} "
            "--default-log-to-file=false --default-log-to-stderr=true\n"
        )

    def _write(self, path: str, text: str, mode: int = 0o644) -> None:
        self.host.run("install", "-D", "-m", f"{mode:o}", "/dev/stdin", path, stdin=text)

    def _own(self, *paths: str) -> None:
        self.host.run("chown", "-R", f"{self.owner}:{self.owner}", *paths)

    def _prepare(self, daemon: str) -> str:
        data = self.data(daemon)
        self.host.run("mkdir", "-p", data)
        return data

    def _launch(self, daemon: str) -> None:
        """Hand its data to its user and start its unit (mkfs wants an empty directory, so
        cephadm's unit.run goes in only now)."""
        data = self.data(daemon)
        if self.cephadm:
            binary = f"ceph-{daemon.partition('.')[0]}"
            self._write(f"{data}/unit.run", self._unit_run(daemon, binary), 0o755)
        self._own(data)
        self.host.run("systemctl", "start", self.unit(daemon))

    def _make_mon(self) -> None:
        v2, v1 = self.mon_ports
        run = self.host.run
        run("ceph-authtool", "--create-keyring", "/root/mon.keyring", "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *")  # fmt: skip
        run("ceph-authtool", "--create-keyring", "/etc/ceph/ceph.client.admin.keyring",
            "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd",
            "allow *", "--cap", "mgr", "allow *", "--cap", "mds", "allow *")  # fmt: skip
        run("ceph-authtool", "/root/mon.keyring", "--import-keyring",
            "/etc/ceph/ceph.client.admin.keyring")  # fmt: skip
        run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a",
            f"[v2:127.0.0.1:{v2},v1:127.0.0.1:{v1}]", "/root/monmap")  # fmt: skip
        data = self._prepare("mon.a")
        run("ceph-mon", "--mkfs", "-i", "a", "--mon-data", data, "--monmap", "/root/monmap",
            "--keyring", "/root/mon.keyring")  # fmt: skip
        self._launch("mon.a")
        try:
            self.host.wait(lambda: self.ceph_json("mon", "stat") is not None, 60, "the monitor")
        except BootError as exc:
            raise BootError(f"{exc}: {self.why('mon.a')}") from None

    def _make_mgr(self) -> None:
        data = self._prepare("mgr.x")
        self.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *",
                  "mds", "allow *", "-o", f"{data}/keyring")  # fmt: skip
        self._launch("mgr.x")

    def _make_osd(self, osd_id: int) -> None:
        osd_uuid = str(uuid.uuid4())
        created = self.ceph("osd", "new", osd_uuid).strip()
        if created != str(osd_id):
            raise BootError(f"ceph osd new gave id {created}, expected {osd_id}")
        data = self._prepare(f"osd.{osd_id}")
        key = self.host.run("ceph-authtool", "--gen-print-key").stdout.strip()
        self._write(f"{data}/keyring", f"[osd.{osd_id}]\n\tkey = {key}\n", 0o600)
        self.ceph("auth", "add", f"osd.{osd_id}", "-i", f"{data}/keyring", "osd", "allow *",
                  "mon", "allow profile osd", "mgr", "allow profile osd")  # fmt: skip
        self.host.run("ceph-osd", "-i", str(osd_id), "--mkfs", "--osd-uuid", osd_uuid,
                      "--osd-data", data, "--key", key)  # fmt: skip
        self._launch(f"osd.{osd_id}")

    # -- asking -----------------------------------------------------------------------

    def why(self, daemon: str) -> str:
        """The last lines its unit logged (without Ceph's crash dump of log levels)."""
        lines = self.host.journal(self.unit(daemon)).splitlines()
        said = [ln for ln in lines if not re.match(r"^\s*-?\d+/\s*-?\d+ ", ln)]
        return "\n".join(said[-25:])

    def ceph(self, *args: str, timeout: float = 60) -> str:
        return self.host.run("ceph", "--connect-timeout", "10", *args, timeout=timeout).stdout

    def ceph_json(self, *args: str) -> Any:
        try:
            return json.loads(self.ceph(*args, "-f", "json", timeout=20))
        except (BootError, subprocess.TimeoutExpired, json.JSONDecodeError):
            return None

    def up_osds(self) -> set[int]:
        dump = self.ceph_json("osd", "dump")
        return {o["osd"] for o in dump["osds"] if o["up"]} if dump else set()

    def wait_mgr_module(self, name: str, timeout: float = 90) -> None:
        """Until an active mgr has told the monitors it has module ``name``."""

        def known() -> bool:
            dump = self.ceph_json("mgr", "dump") or {}
            names = {m.get("name") for m in dump.get("available_modules", [])}
            return bool(dump.get("available")) and name in names

        self.host.wait(known, timeout, f"the mgr announcing its {name} module")

    def clean(self) -> bool:
        """Every PG active+clean (ok-to-stop, a remediation guard, needs to know them all)."""
        stat = self.ceph_json("pg", "stat") or {}
        pgs = stat.get("pg_summary", stat).get("num_pg_by_state", [])
        total = stat.get("pg_summary", stat).get("num_pgs", -1)
        return sum(s["num"] for s in pgs if s["name"] == "active+clean") == total

    def pid(self, daemon: str) -> int:
        """The daemon's host pid (the fault injector works on host pids): its unit's main
        process, or the first process of the daemon's binary below it (cephadm's unit.run
        runs it behind a PID namespace's init)."""
        unit = self.unit(daemon)
        main = int(self.host.show(unit, "MainPID")["MainPID"])
        if main == 0:
            raise BootError(f"{unit} is not running")
        binary = f"ceph-{daemon.partition('.')[0]}"
        todo = [self.host.host_pid(main)]
        while todo:
            pid = todo.pop(0)
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/comm").read_text().strip() == binary:
                    return pid
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
        raise BootError(f"no {binary} process in {unit}")
