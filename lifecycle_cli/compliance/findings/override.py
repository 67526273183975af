"""`override`: a stage changed by hand in the export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from ...expressions import Kind
from .base import INFO, Finding, detail, no_rows, with_customer

if TYPE_CHECKING:
    from .context import Context


class Override(Finding):
    """With `--state`: the export's stage was changed by hand since the state's last run
    (see [nightly.md](nightly.md#when-the-export-and-the-state-disagree)).

    Looks at: the day's start (and with `--from`, the state's records)
    Reads: —

    The context's ``overrides`` are rows of the state's overrides table; `kept` says whose
    stage the day went on with (`--prefer`).
    """

    name = "override"
    severity = INFO

    def not_checked(self, context: Context) -> str | None:
        if not context.state_given:
            return "no --state to compare the export with"
        return None

    def find(self, context: Context) -> pl.LazyFrame:
        overrides = context.overrides
        if overrides is None or overrides.height == 0:
            return no_rows()
        events = overrides.lazy().select(
            pl.col("customer_id").cast(pl.String),
            pl.col("as_of").alias("__seen_on"),
            "state_stage", "export_stage", "kept",
        )
        return self.rows(with_customer(events, context.everyone), context, detail(
            ("state_stage", pl.col("state_stage"), Kind.STRING),
            ("export_stage", pl.col("export_stage"), Kind.STRING),
            ("kept", pl.col("kept"), Kind.STRING),
            ("seen_on", pl.col("__seen_on"), Kind.DATE),
        ))
