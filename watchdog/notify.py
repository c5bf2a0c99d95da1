"""Daemon lifecycle: systemd's notify protocol (READY, WATCHDOG keep-alives, STATUS, STOPPING).

The protocol is one datagram per message to the AF_UNIX socket named in ``$NOTIFY_SOCKET``
(a leading ``@`` means the abstract namespace). It is small enough to speak directly rather
than depend on a binding. Keep-alives are sent from the probe loop itself, never from a
helper thread, so that a loop that hangs stops them and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages when systemd asked for them; does nothing otherwise."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.keepalive_seconds = _keepalive_seconds(env)
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @property
    def enabled(self) -> bool:
        """True when started by systemd with Type=notify (or a test posing as it)."""
        return self._sock is not None

    def send(self, *fields: str) -> None:
        """Send one message; a lost message is logged, never fatal (systemd may be restarting)."""
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self.address)
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address.lstrip("\0"), exc)

    def ready(self, status: str) -> None:
        """The service is up: metrics are being served and the first cycle has finished."""
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def alive(self, status: str | None = None) -> None:
        """A keep-alive from the loop, with the current one-line status."""
        self.send("WATCHDOG=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        """Between RELOADING=1 and the next READY=1 systemd reports the unit as reloading."""
        self.send("RELOADING=1")

    def stopping(self) -> None:
        """The service is shutting down."""
        self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _keepalive_seconds(env: os._Environ[str] | dict[str, str]) -> float | None:
    """Half of WatchdogSec= (as systemd advises), or None when no watchdog is armed."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):  # meant for another process (we were forked)
        return None
    return int(usec) / 2e6
