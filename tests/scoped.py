"""Things a test sets up with ``with`` and that are always torn down, even half-built."""

from __future__ import annotations

from typing import Self


class Scoped:
    """``with`` runs ``start()``; ``stop()`` runs on leaving, or at once if starting failed.

    ``stop()`` must cope with whatever ``start()`` got done before it failed.
    """

    def start(self) -> None:
        """Build it."""
        raise NotImplementedError

    def stop(self) -> None:
        """Tear down what there is of it."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
