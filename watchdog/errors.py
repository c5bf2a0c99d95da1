"""Errors of the watchdog: one family; only the CLI turns them into exit codes.

Each error also keeps the built-in base its callers have always caught (``OSError`` for
the kernel and socket readers, ``ValueError`` for bad data, ``RuntimeError`` for a command
that failed), so ``except WatchdogError`` catches everything the watchdog raises on
purpose and nothing that used to be caught is missed.
"""


class WatchdogError(Exception):
    """Base of every error the watchdog raises on purpose."""


class ConfigError(WatchdogError):
    """The configuration is invalid; ``problems`` lists each one with its dotted path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class Invalid(WatchdogError, ValueError):  # noqa: N818 - reads as `raise Invalid(problems)`
    """Data does not fit its schema; ``problems`` has one line per fault, each ``path: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class SecretError(WatchdogError):
    """A secret that should be there is not; the message names where it was looked for."""


class SimulatorError(WatchdogError):
    """The simulator could not start or control a simulated OSD."""


class MonitorError(WatchdogError, RuntimeError):
    """A monitor command failed: unreachable, refused, timed out, or answered garbage."""


class MapParseError(WatchdogError, ValueError):
    """The monitor's answer is not the OSD map we expect."""


class SockDiagError(WatchdogError, OSError):
    """The kernel refused or failed a socket dump (e.g. no netlink in this sandbox)."""


class AsokError(WatchdogError, OSError):
    """An admin socket could not be found, reached or read; the message says which."""


class StepError(WatchdogError, RuntimeError):
    """A remediation step could not do its job; the message says why."""


class StepInterruptedError(StepError):
    """The watchdog is shutting down: the step stopped waiting, nothing failed."""
