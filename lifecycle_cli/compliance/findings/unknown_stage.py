"""`unknown_stage`: a stage the rules don't name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import STAGE
from ...expressions import Kind
from ...suggest import suggest
from .base import ERROR, Finding, detail
from .context import WHERE

if TYPE_CHECKING:
    from .context import Context


class UnknownStage(Finding):
    """The stage is not one the rules name.

    Looks at: the stages the day starts from
    Reads: the rules' `stages`

    `run` stops on such a stage; `check` reports every such customer, with the closest stage
    name and where the stage came from (the starting frame's WHERE column: the export's line
    or row, or the state), and leaves them out of the findings after the day's moves.
    """

    name = "unknown_stage"
    severity = ERROR

    def find(self, context: Context) -> pl.LazyFrame:
        names = context.rules.stage_names
        start = context.start
        unknown = pl.col(STAGE).is_not_null() & ~pl.col(STAGE).is_in(names)
        values = start.filter(unknown).select(pl.col(STAGE).unique()).collect()[STAGE]
        # a suggestion per distinct unknown value (a handful), not per customer
        closest = {value: suggest(value, names) for value in sorted(values.to_list())}
        why = detail(("closest", pl.col(STAGE).replace_strict(
            closest, default=None, return_dtype=pl.String), Kind.STRING))
        if WHERE in start.collect_schema().names():
            why = pl.concat_str([why, pl.lit("; "), pl.col(WHERE)])
        return self.rows(start.filter(unknown), context, why)
