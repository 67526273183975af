"""`no_owner`: nobody owns the customer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...expressions import Kind
from .base import WARNING, Finding, detail, not_exempt
from .context import OWNER

if TYPE_CHECKING:
    from .context import Context


class NoOwner(Finding):
    """The owner column is empty.

    Looks at: the stages after the day's moves, except `exempt_stages`
    Reads: `owner_column`, `exempt_stages`

    Blank text counts as empty.
    """

    name = "no_owner"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        if context.settings.owner_column is None:
            return "no owner column (compliance: owner_column, or a CTA's owner)"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        blank = pl.col(OWNER).is_null() | (pl.col(OWNER).str.strip_chars() == "")
        return self.rows(context.after.filter(not_exempt(context) & blank), context, detail(
            ("column", pl.lit(context.settings.owner_column), Kind.STRING)))
