"""How a long job says how far it is, without drawing anything.

The library calls a :class:`Progress` with the step it is in and, where it knows them,
counts: ``progress("replaying days", 12, 31, "days")``. The command line draws that on a
terminal (a bar with counts and an ETA); a caller from Python may log it or pass
:func:`no_progress`. The library never imports a terminal package (see pyproject.toml).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``step`` names what runs now; ``done`` of ``total`` ``unit`` say how far it is, for a
    step that counts (days of a backfill, rows written). A new ``step`` ends the one
    before."""

    def __call__(self, step: str, done: int | None = None, total: int | None = None,
                 unit: str = "") -> None: ...


def no_progress(step: str, done: int | None = None, total: int | None = None,
                unit: str = "") -> None:
    """A :class:`Progress` that says nothing."""
