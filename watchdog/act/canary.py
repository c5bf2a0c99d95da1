"""Act stage, canary: a listener of the watchdog's own that answers like an OSD.

If probing it fails, the failure is ours (our fd limit, our network namespace): no OSD is
blamed and nothing is done. It is probed on a remediation's thread, never the loop's.
"""

from __future__ import annotations

import socket
import threading

from watchdog.model import BANNERS, Endpoint, Msgr, Outcome
from watchdog.probes.tcp import probe_banners


class Canary:
    """Serves a Ceph banner on 127.0.0.1 from a thread of its own."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.endpoint = Endpoint("127.0.0.1", self.sock.getsockname()[1], Msgr.V2)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, name="canary", daemon=True).start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # timeout, or closed by stop()
                continue
            with conn:
                try:
                    conn.sendall(BANNERS[Msgr.V2])
                except OSError:  # the prober gave up first: its probe says so
                    continue

    def answers(self, timeout: float) -> bool:
        """Probe it exactly as an OSD is probed."""
        [result] = probe_banners([self.endpoint], timeout)
        return result.outcome is Outcome.OK

    def stop(self) -> None:
        """Close the listener."""
        self._stop.set()
        self.sock.close()
