"""Readers of /proc, on fixture trees (roots are parameters)."""

from pathlib import Path

import pytest

from watchdog.host import procfs


def write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


LIMITS = """Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1048576              1048576              files
"""


def test_soft_nofile_limit_is_read_from_limits(tmp_path):
    write(tmp_path, "42/limits", LIMITS)
    assert procfs.soft_nofile_limit(tmp_path, 42) == 1048576


def test_an_unlimited_soft_limit_is_reported_as_unlimited(tmp_path):
    write(
        tmp_path, "42/limits", LIMITS.replace("1048576              1048576", "unlimited unlimited")
    )
    assert procfs.soft_nofile_limit(tmp_path, 42) == procfs.UNLIMITED


def test_a_vanished_process_is_a_lookup_error(tmp_path):
    with pytest.raises(ProcessLookupError):
        procfs.soft_nofile_limit(tmp_path, 42)
    with pytest.raises(ProcessLookupError):
        procfs.count_fds(tmp_path, 42)


def test_socket_inodes_map_to_their_fd_numbers(tmp_path):
    fd_dir = tmp_path / "42" / "fd"
    fd_dir.mkdir(parents=True)
    (fd_dir / "0").symlink_to("/dev/null")
    (fd_dir / "19").symlink_to("socket:[8264]")
    (fd_dir / "20").symlink_to("socket:[8282]")
    (fd_dir / "21").symlink_to("pipe:[99]")
    assert procfs.socket_inodes(tmp_path, 42) == {8264: 19, 8282: 20}
    assert procfs.count_fds(tmp_path, 42) == 4


NETSTAT = """TcpExt: SyncookiesSent ListenOverflows ListenDrops
TcpExt: 0 17 19
IpExt: InNoRoutes
IpExt: 0
"""


def test_listen_overflows_come_from_netstat(tmp_path):
    write(tmp_path, "net/netstat", NETSTAT)
    assert procfs.listen_overflows(tmp_path) == 17


def test_an_unreadable_netstat_is_an_error_for_the_caller_to_report(tmp_path):
    with pytest.raises(FileNotFoundError):
        procfs.listen_overflows(tmp_path)


def test_a_kernel_without_the_counter_has_no_value(tmp_path):
    write(tmp_path, "net/netstat", "TcpExt: SyncookiesSent\nTcpExt: 0\n")
    assert procfs.listen_overflows(tmp_path) is None


def test_processes_are_found_by_name_from_comm_alone(tmp_path):
    for pid, comm in ((10, "ceph-osd"), (11, "bash"), (12, "a-very-long-pro"), (13, None)):
        (tmp_path / str(pid)).mkdir()
        if comm is not None:  # 13: its comm vanished (the process exited mid-scan)
            (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    (tmp_path / "self").mkdir()
    # The kernel keeps 15 bytes of a name: a longer one matches on those.
    assert sorted(procfs.processes_named(tmp_path, ["ceph-osd", "a-very-long-process"])) == [
        10,
        12,
    ]
