"""`cta_past_due`: an open CTA whose due date has passed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...columns import OPEN, STAGE
from ...expressions import Kind
from .base import WARNING, Finding, detail, no_rows, with_customer
from .context import OWNER

if TYPE_CHECKING:
    from .context import Context


class CtaPastDue(Finding):
    """A CTA is open and its `due_on` is before the as-of date.

    Looks at: the state's CTAs, with the as-of date's own created and closed as `run --state`
    would (a CTA that today's run closes is not past due)
    Reads: the rules' `ctas`

    The context's ``ctas`` hold each CTA's latest row on the as-of date. The owner is the
    CTA's; the stage and days are the customer's now (the CTA's stage when the export no
    longer lists the customer).
    """

    name = "cta_past_due"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        if not context.rules.cta_rules():
            return "the rules have no CTAs"
        if not context.state_given:
            return "no --state: a run without one knows no CTA past due"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        ctas = context.ctas
        if ctas is None or ctas.height == 0:
            return no_rows()
        as_of = pl.lit(context.as_of, dtype=pl.Date)
        latest = (
            ctas.lazy()
            .filter((pl.col("status") == OPEN) & (pl.col("due_on") < as_of))
            .select(
                pl.col("customer_id").cast(pl.String),
                pl.col("stage").alias("__cta_stage"),
                pl.col("owner").cast(pl.String).alias("__cta_owner"),
                "cta_id", "rule_id", "name", "due_on",
            )
        )
        joined = with_customer(latest, context.everyone.drop(OWNER)).with_columns(
            pl.coalesce(pl.col(STAGE), pl.col("__cta_stage")).alias(STAGE),
            pl.col("__cta_owner").alias(OWNER),
        )
        return self.rows(joined, context, detail(
            ("cta_id", pl.col("cta_id"), Kind.STRING),
            ("name", pl.col("name"), Kind.STRING),
            ("rule_id", pl.col("rule_id"), Kind.STRING),
            ("due_on", pl.col("due_on"), Kind.DATE),
            ("days_past_due", (as_of - pl.col("due_on")).dt.total_days(), Kind.NUMBER),
        ))
