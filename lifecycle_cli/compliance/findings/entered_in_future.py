"""`entered_in_future`: a stage entered after the as-of date."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import DAYS_IN_STAGE, ENTERED, STAGE
from ...expressions import Kind
from .base import ERROR, Finding, detail

if TYPE_CHECKING:
    from .context import Context


class EnteredInFuture(Finding):
    """`stage_entered_at` is after the as-of date (negative `days_in_stage`).

    Looks at: the stages the day starts from
    Reads: —

    The customer is otherwise checked like any other.
    """

    name = "entered_in_future"
    severity = ERROR

    def find(self, context: Context) -> pl.LazyFrame:
        future = pl.col(STAGE).is_not_null() & (
            pl.col(ENTERED) > pl.lit(context.as_of, dtype=pl.Date))
        return self.rows(context.start.filter(future), context, detail(
            ("stage_entered_at", pl.col(ENTERED), Kind.DATE),
            ("days_ahead", -pl.col(DAYS_IN_STAGE), Kind.NUMBER),
        ))
