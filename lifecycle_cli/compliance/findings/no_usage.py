"""`no_usage`: no usage lately."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...expressions import Kind
from .base import WARNING, Finding, detail, not_exempt
from .context import LAST_USAGE

if TYPE_CHECKING:
    from .context import Context


class NoUsage(Finding):
    """No usage row in the `no_usage_days` days ending on the as-of date (as-of day included,
    like `window_days`).

    Looks at: the stages after the day's moves, except `exempt_stages`
    Reads: `no_usage_days`, `exempt_stages`

    The last usage (the context's LAST_USAGE column) is found in the same pass over the usage
    as the rules' metrics.
    """

    name = "no_usage"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        if context.settings.no_usage_days is None:
            return "compliance: no_usage_days is null"
        if not context.usage_given:
            return "no usage export given"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        days = context.settings.no_usage_days
        since = (pl.lit(context.as_of, dtype=pl.Date) - pl.col(LAST_USAGE)).dt.total_days()
        quiet = pl.col(LAST_USAGE).is_null() | (since >= days)
        return self.rows(context.after.filter(not_exempt(context) & quiet), context, detail(
            ("last_usage", pl.col(LAST_USAGE), Kind.DATE),
            ("days_since", since, Kind.NUMBER),
            ("no_usage_days", pl.lit(days), Kind.NUMBER),
        ))
