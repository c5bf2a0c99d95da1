"""A background worker: one thread that does its work every period, or at once when woken.

The map watcher and the mgr reporter are this, so the probe loop never waits for a monitor
or a mgr: it wakes them and moves on. Their settings change in place on a reload
(``reconfigure``), so a reload neither drops what they hold nor joins their threads. The
canary is one too, with a period of nothing: its accept() is the wait.
"""

from __future__ import annotations

import threading


class Worker:
    """Runs ``work()`` on a thread of its own; subclasses say how often and what."""

    name = "worker"
    work_first = True  # work at once when started, then wait; False: wait first

    def __init__(self) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def period(self) -> float:
        """Seconds between two rounds of work when nothing wakes the worker."""
        raise NotImplementedError

    def join_timeout(self) -> float:
        """How long ``stop()`` waits for a round in flight (its own timeouts bound it)."""
        raise NotImplementedError

    def work(self) -> None:
        """One round: must not raise (it logs and counts its own failures)."""
        raise NotImplementedError

    def closed(self) -> None:
        """After the thread ended: release what the work held (connections)."""

    @property
    def running(self) -> bool:
        """The thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; a worker already running is left alone."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Work now instead of at the end of the period."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread (a round in flight ends within its own timeout), then release."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout())
            self._thread = None
        self.closed()

    def _run(self) -> None:
        if self.work_first:
            self.work()
        while not self._stop.is_set():
            self._wake.wait(self.period())
            self._wake.clear()
            if self._stop.is_set():
                return
            self.work()
