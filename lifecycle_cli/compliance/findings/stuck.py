"""`stuck`: far longer in the stage than expected."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import ENTERED
from ...engine.builtins import stuck, stuck_after
from ...expressions import Kind
from .base import ERROR, Finding, detail

if TYPE_CHECKING:
    from .context import Context


class Stuck(Finding):
    """`days_in_stage > stuck_factor × expected_days` (rounded down).

    Looks at: the stages after the day's moves
    Reads: `stuck_factor`; the stages' `expected_days`

    A stage without `expected_days` has no stuck customers. The threshold is computed in
    `engine.builtins`, with days in stage and expected days.
    """

    name = "stuck"
    severity = ERROR

    def find(self, context: Context) -> pl.LazyFrame:
        factor = context.settings.stuck_factor
        return self.rows(context.after.filter(stuck(factor)), context, detail(
            ("stage_entered_at", pl.col(ENTERED), Kind.DATE),
            ("stuck_after_days", stuck_after(factor), Kind.NUMBER),
        ))
