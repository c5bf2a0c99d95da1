"""Errors of the watchdog: one small hierarchy; only the CLI turns them into exit codes."""


class WatchdogError(Exception):
    """Base of every error the watchdog raises on purpose."""


class ConfigError(WatchdogError):
    """The configuration is invalid; ``problems`` lists each one with its dotted path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration in {source}:\n{lines}")


class SimulatorError(WatchdogError):
    """The simulator could not start or control a simulated OSD."""
