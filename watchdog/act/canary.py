"""Act stage, canary: a listener of the watchdog's own that answers like an OSD.

If probing it fails, the failure is ours (our fd limit, our network namespace): no OSD is
blamed and nothing is done. It is probed on a remediation's thread, never the loop's.
"""

from __future__ import annotations

import socket

from watchdog.model import BANNERS, Endpoint, Msgr, Outcome
from watchdog.probes.tcp import probe_banners
from watchdog.worker import Worker

ACCEPT_WAIT = 0.5  # seconds one accept() waits, so a stop is seen within it


class Canary(Worker):
    """Serves a Ceph banner on 127.0.0.1, one connection per round of its worker thread."""

    name = "canary"

    def __init__(self) -> None:
        super().__init__()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(ACCEPT_WAIT)
        self.endpoint = Endpoint("127.0.0.1", self.sock.getsockname()[1], Msgr.V2)
        self.start()

    def period(self) -> float:
        """No pause between rounds."""
        return 0.0  # accept() itself is the wait

    def join_timeout(self) -> float:
        """One accept() wait, and the banner's send."""
        return ACCEPT_WAIT + 0.5

    def work(self) -> None:
        """Answer one client with the banner, or none within ACCEPT_WAIT."""
        try:
            conn, _ = self.sock.accept()
        except OSError:  # the wait ended with no client
            return
        with conn:
            try:
                conn.sendall(BANNERS[Msgr.V2])
            except OSError:  # the prober gave up first: its probe says so
                return

    def closed(self) -> None:
        """Close the listener."""
        self.sock.close()

    def answers(self, timeout: float) -> bool:
        """Probe it exactly as an OSD is probed."""
        [result] = probe_banners([self.endpoint], timeout)
        return result.outcome is Outcome.OK
