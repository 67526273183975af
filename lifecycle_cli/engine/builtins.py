"""The built-in values of a customer on a day, computed in one place: days in stage,
expected days, overdue, stuck, and the rules' derived values.

``days_in_stage`` counts whole calendar days from ``stage_entered_at`` to the
as-of date; ``overdue`` is ``days_in_stage > expected_days``; ``stuck`` is
``days_in_stage > stuck_factor * expected_days`` (the compliance setting).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import polars as pl

from ..columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS, OVERDUE, SEGMENT, STAGE

if TYPE_CHECKING:
    from ..rules.model import Rules
    from .compile import CompiledRules


def days_in_stage(as_of: dt.date, entered: pl.Expr | None = None) -> pl.Expr:
    """Whole days since the stage was entered (NULL when that date is unknown)."""
    entered = pl.col(ENTERED) if entered is None else entered
    return (pl.lit(as_of, dtype=pl.Date) - entered).dt.total_days().cast(pl.Int64)


def expected_days(rules: Rules, stage: pl.Expr | None = None, segment: pl.Expr | None = None
                  ) -> pl.Expr:
    """The stage's ``expected_days`` (NULL for a stage without, or one the rules don't name),
    in the customer's ``segment`` (default: the ``segment`` column, read only when a segment
    changes some stage's expected days)."""
    stage = pl.col(STAGE) if stage is None else stage

    def days(of: str | None) -> pl.Expr:
        return stage.replace_strict(rules.expected_days_in(of), default=None,
                                    return_dtype=pl.Int64)

    own = [s.name for s in rules.segments if s.expected_days]
    if not own:
        return days(None)
    segment = pl.col(SEGMENT) if segment is None else segment
    chain: Any = None
    for name in own:
        cond = segment == name
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(days(name))
    return chain.otherwise(days(None))


def overdue(days: pl.Expr | None = None, expected: pl.Expr | None = None) -> pl.Expr:
    """More days in the stage than expected; false when either is unknown."""
    days = pl.col(DAYS_IN_STAGE) if days is None else days
    expected = pl.col(EXPECTED_DAYS) if expected is None else expected
    return (days > expected).fill_null(False)


def stuck_after(factor: float, expected: pl.Expr | None = None) -> pl.Expr:
    """The days in a stage after which a customer is stuck: ``factor`` times the expected
    days, rounded down to whole days (NULL for a stage without expected days)."""
    expected = pl.col(EXPECTED_DAYS) if expected is None else expected
    return (expected * factor).floor().cast(pl.Int64)


def stuck(factor: float, days: pl.Expr | None = None, expected: pl.Expr | None = None
          ) -> pl.Expr:
    """More than ``factor`` times the expected days in the stage; false when unknown."""
    days = pl.col(DAYS_IN_STAGE) if days is None else days
    return (days > stuck_after(factor, expected)).fill_null(False)


def owner(column: str | None, default: str | None) -> pl.Expr:
    """Who owns a customer (or its CTA): the text of the owner ``column``, and the rules'
    ``default_owner`` where it is empty or blank, or where there is no column. The one
    owner rule of CTAs, tasks and the report's tables."""
    fallback = pl.lit(default, dtype=pl.String)
    if column is None:
        return fallback
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text).fill_null(fallback)


def with_builtins(frame: pl.LazyFrame, compiled: CompiledRules) -> pl.LazyFrame:
    """Add days_in_stage, expected_days, overdue and the derived values."""
    frame = frame.with_columns(
        days_in_stage(compiled.as_of).alias(DAYS_IN_STAGE),
        expected_days(compiled.rules).alias(EXPECTED_DAYS),
    ).with_columns(overdue().alias(OVERDUE))
    for name, expr in compiled.derived:
        frame = frame.with_columns(expr.expr.alias(name))
    return frame


def final_values(state: pl.DataFrame, compiled: CompiledRules) -> pl.DataFrame:
    """Days in stage, expected days, overdue and the derived values on the final stages."""
    return with_builtins(state.lazy(), compiled).collect()
