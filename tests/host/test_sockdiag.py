"""The netlink sock_diag reader against real sockets on this host."""

import socket
from collections.abc import Iterable

from tests.conftest import unavailable
from watchdog.host.sockdiag import TcpSocket, _port_filter, dump_established, dump_listeners


def find(port: int, sockets: Iterable[TcpSocket]) -> TcpSocket:
    (match,) = [s for s in sockets if s.port == port]
    return match


def test_a_listener_shows_its_accept_queue_and_backlog(server):
    listener = server(None, backlog=7)
    waiting = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(3)]
    try:
        found = find(listener.port, dump_listeners().values())
    finally:
        for sock in waiting:
            sock.close()
    assert (found.host, found.queue, found.backlog) == ("127.0.0.1", 3, 7)
    assert found.inode > 0


def test_the_dump_is_keyed_by_the_inode_each_socket_carries(server):
    server(None)
    dump = dump_listeners()
    assert len(dump) >= 1
    assert all(dump[inode].inode == inode for inode in dump)
    assert dump.get(0) is None  # an inode no listener has: not there, no error


def test_ipv6_listeners_are_dumped_too():
    try:
        sock = socket.socket(socket.AF_INET6)
        sock.bind(("::1", 0))
    except OSError:
        unavailable("no IPv6 loopback on this host")
    with sock:
        sock.listen(3)
        found = find(sock.getsockname()[1], dump_listeners().values())
    assert (found.host, found.backlog) == ("::1", 3)


def test_established_dump_is_filtered_to_the_ports_asked_for(server):
    wanted, other = server(None), server(None)
    mine = [socket.create_connection(("127.0.0.1", wanted.port)) for _ in range(2)]
    theirs = [socket.create_connection(("127.0.0.1", other.port)) for _ in range(3)]
    try:
        accepted = wanted.sock.accept()[0]
        found = dump_established([wanted.port, 1, 65535])
        both = dump_established([wanted.port, other.port])
    finally:
        for sock in [*mine, *theirs]:
            sock.close()
    accepted.close()
    assert {s.port for s in found} == {wanted.port}
    assert len(found) == 2
    # Still queued: in the kernel's table, but no file (inode 0) until accept().
    assert sorted(s.inode != 0 for s in found) == [False, True]
    assert len(both) == 5


def test_no_ports_means_no_dump():
    assert dump_established([]) == []


def test_the_port_filter_is_one_block_per_port_joined_by_jumps():
    code = _port_filter([7000, 6800, 6800])
    assert len(code) == 20 * 2 - 4
