"""Other "hosts" for the tests: network namespaces of our own, joined to this one by veths.

Namespace i gets 10.77.<i+1>.2, its veth's peer here 10.77.<i+1>.1, and a default route
through it, so every namespace reaches every address of this host (Linux accepts a packet for
any local address on any interface). The cluster binds 10.77.1.1, so it is reachable from
here and from each namespace. A rule in one namespace's own nftables output chain breaks its
path to one OSD port, from outside only: this host's firewall is never touched. Everything is
deleted on exit (deleting a namespace deletes its veth end, and the pair with it).
"""

from __future__ import annotations

import os
import subprocess

from tests.scoped import Scoped

SUBNET = "10.77"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Vantages(Scoped):
    """``count`` namespaces; ``names[i]`` for ``ip netns exec``."""

    def __init__(self, count: int) -> None:
        tag = os.getpid() % 100000
        self.names = [f"wdns{tag}-{i}" for i in range(count)]
        self._links = [f"wdv{tag}{i}" for i in range(count)]

    @property
    def cluster_address(self) -> str:
        return f"{SUBNET}.1.1"

    @property
    def cluster_network(self) -> str:
        return f"{SUBNET}.1.0/24"

    def prefix(self, i: int) -> list[str]:
        return ["ip", "netns", "exec", self.names[i]]

    def start(self) -> None:
        """The namespaces, each linked to the host by a veth pair with a route out."""
        for i, (name, link) in enumerate(zip(self.names, self._links, strict=True)):
            net = f"{SUBNET}.{i + 1}"
            _ip("netns", "add", name)
            _ip("link", "add", link, "type", "veth", "peer", "name", f"{link}p")
            _ip("link", "set", f"{link}p", "netns", name)
            _ip("addr", "add", f"{net}.1/24", "dev", link)
            _ip("link", "set", link, "up")
            inside = ["netns", "exec", name, "ip"]
            _ip(*inside, "addr", "add", f"{net}.2/24", "dev", f"{link}p")
            _ip(*inside, "link", "set", f"{link}p", "up")
            _ip(*inside, "link", "set", "lo", "up")
            _ip(*inside, "route", "add", "default", "via", f"{net}.1")

    def stop(self) -> None:
        """Remove whatever of them exists."""
        for name in self.names:
            subprocess.run(
                ["ip", "netns", "del", name], capture_output=True, timeout=10, check=False
            )
        for link in self._links:  # normally gone with the namespace
            subprocess.run(
                ["ip", "link", "del", link], capture_output=True, timeout=10, check=False
            )

    def drop(self, i: int, address: str, ports: set[int]) -> None:
        """From namespace i, packets to these ports of ``address`` vanish (SYNs time out)."""
        nft = ["ip", "netns", "exec", self.names[i], "nft"]
        subprocess.run([*nft, "add", "table", "ip", "wd"], check=True, timeout=10)
        chain = "{ type filter hook output priority 0 ; }"
        subprocess.run([*nft, "add", "chain", "ip", "wd", "out", chain], check=True, timeout=10)
        listed = "{ " + ", ".join(str(p) for p in sorted(ports)) + " }"
        subprocess.run(
            [*nft, "add", "rule", "ip", "wd", "out", "ip", "daddr", address, "tcp", "dport",
             listed, "drop"],
            check=True, timeout=10,
        )  # fmt: skip

    def allow(self, i: int) -> None:
        """Undo ``drop`` in namespace i."""
        nft = ["ip", "netns", "exec", self.names[i], "nft"]
        subprocess.run([*nft, "delete", "table", "ip", "wd"], check=True, timeout=10)
