"""`no_renewal_date`: in the renewal stage without a renewal date."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import STAGE
from ...expressions import Kind
from .base import WARNING, Finding, detail
from .context import RENEWAL_DATE

if TYPE_CHECKING:
    from .context import Context


class NoRenewalDate(Finding):
    """In the renewal stage with an empty renewal date.

    Looks at: the stages after the day's moves
    Reads: `renewal_stage`, `renewal_date_column`

    Blank text counts as empty.
    """

    name = "no_renewal_date"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        if context.settings.renewal_stage is None:
            return "no renewal stage (compliance: renewal_stage)"
        if context.settings.renewal_date_column is None:
            return "no renewal date column (compliance: renewal_date_column)"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        renewal = pl.col(RENEWAL_DATE)
        if context.after.collect_schema()[RENEWAL_DATE] == pl.String:
            renewal = pl.when(renewal.str.strip_chars() != "").then(renewal)
        missing = (pl.col(STAGE) == context.settings.renewal_stage) & renewal.is_null()
        return self.rows(context.after.filter(missing), context, detail(
            ("column", pl.lit(context.settings.renewal_date_column), Kind.STRING)))
