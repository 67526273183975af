"""`overdue`: longer in the stage than expected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS
from ...engine.builtins import overdue
from ...expressions import Kind
from .base import WARNING, Finding, detail

if TYPE_CHECKING:
    from .context import Context


class Overdue(Finding):
    """`days_in_stage > expected_days`, as the `overdue` column of `run` (a stuck customer is
    overdue too).

    Looks at: the stages after the day's moves
    Reads: the stages' `expected_days`

    A customer who moved today has 0 days in its new stage and is not overdue.
    """

    name = "overdue"
    severity = WARNING

    def find(self, context: Context) -> pl.LazyFrame:
        return self.rows(context.after.filter(overdue()), context, detail(
            ("stage_entered_at", pl.col(ENTERED), Kind.DATE),
            ("days_over", pl.col(DAYS_IN_STAGE) - pl.col(EXPECTED_DAYS), Kind.NUMBER),
        ))
