"""`skipped_stage`: a move forward over stages of the strict order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...expressions import Kind
from .base import WARNING, Finding, detail, no_rows, with_customer

if TYPE_CHECKING:
    from .context import Context


class SkippedStage(Finding):
    """A move went forward over stages of `strict_order`.

    Looks at: the day's moves (and with `--from`, the state's)
    Reads: `strict_order`

    Moves to or from a stage outside the order, backward moves and initial assignments are
    not skips; several moves of one day are one step each.
    """

    name = "skipped_stage"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        if len(context.settings.strict_order) < 2:
            return "the stage order is not strict (compliance: strict_order)"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        moves = context.moves
        if moves is None or moves.height == 0:
            return no_rows()
        order = context.settings.strict_order
        index = {name: i for i, name in enumerate(order)}
        # what each (from, to) pair skips: a few stages squared, not one entry per customer
        skipped = {f"{a}\x00{b}": ", ".join(order[i + 1:j])
                   for a, i in index.items() for b, j in index.items() if j > i + 1}
        pair = pl.concat_str([pl.col("from_stage"), pl.lit("\x00"), pl.col("to_stage")])
        events = moves.lazy().select(
            pl.col("customer_id").cast(pl.String),
            pl.col("as_of").alias("__moved_on"),
            "from_stage", "to_stage", "rule_id",
            pair.replace_strict(skipped, default=None, return_dtype=pl.String).alias("__skipped"),
        ).filter(pl.col("__skipped").is_not_null())
        return self.rows(with_customer(events, context.everyone), context, detail(
            ("from_stage", pl.col("from_stage"), Kind.STRING),
            ("to_stage", pl.col("to_stage"), Kind.STRING),
            ("skipped", pl.col("__skipped"), Kind.STRING),
            ("rule_id", pl.col("rule_id"), Kind.STRING),
            ("moved_on", pl.col("__moved_on"), Kind.DATE),
        ))
