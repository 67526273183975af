"""What the findings look at: one :class:`Context`, built once by `check`.

The customers come as *customer frames* (:func:`customer_frame`): one row per
customer with the columns the findings read. The events (moves, hand edits,
CTAs) come as the day gave them, and the state's when a state was read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from ...columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS, ID, SEGMENT, STAGE
from ...engine.builtins import days_in_stage, expected_days

if TYPE_CHECKING:
    from ...rules.model import Rules
    from ..run import Settings

# the columns of a customer frame besides ID, STAGE, ENTERED and the built-ins
OWNER = "owner"
RENEWAL_DATE = "renewal_date"  # when the settings name a renewal date column
LAST_USAGE = "last_usage"  # when the usage was read
WHERE = "__where"  # in the starting frame, optional: where the stage came from (text)


@dataclass(frozen=True)
class Context:
    """Everything a finding may look at for one as-of date.

    ``start`` holds the stages the day starts from (the export's, filled by the state's),
    before any rule runs, every customer included; ``after`` the stages after the day's
    moves, without the customers whose starting stage the rules don't name (those are set
    aside); ``everyone`` is ``after`` plus the customers set aside, for events to be joined
    to (see `base.with_customer`). All three are customer frames.

    ``moves`` are transitions (TRANSITION_SCHEMA, ``customer_id`` as text): the day's, and
    with a state and a start date, the state's since then. ``overrides`` are hand edits of
    the export (OVERRIDE_SCHEMA), the same way. ``ctas`` holds each CTA's latest row after
    the as-of date's own events, when a state was read (None otherwise).
    """

    as_of: dt.date
    rules: Rules
    settings: Settings
    start: pl.LazyFrame
    after: pl.LazyFrame
    everyone: pl.LazyFrame
    moves: pl.DataFrame | None = None
    overrides: pl.DataFrame | None = None
    ctas: pl.DataFrame | None = None
    usage_given: bool = False  # usage was read; with `no_usage_days`, `after` has LAST_USAGE
    state_given: bool = False  # the day started from a state folder


def customer_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    rules: Rules,
    settings: Settings,
    as_of: dt.date,
    *,
    last_usage: str | None = None,
    keep: Sequence[str | pl.Expr] = (),
) -> pl.LazyFrame:
    """The columns the findings read, from customers with ID, STAGE, ENTERED and the
    settings' columns: ``customer_id`` (text), ``stage``, ``stage_entered_at``,
    ``days_in_stage``, ``expected_days``, ``owner``, and, when configured,
    ``renewal_date`` and ``last_usage`` (from the column ``last_usage``); then ``keep``."""
    owner = (pl.col(settings.owner_column).cast(pl.String) if settings.owner_column
             else pl.lit(None, dtype=pl.String))
    frame = frame.lazy()
    # the segment's expected days (customers set aside before the day have no segment)
    segment = (pl.col(SEGMENT) if SEGMENT in frame.collect_schema().names()
               else pl.lit(None, dtype=pl.String))
    extra = []
    if settings.renewal_date_column:
        extra.append(pl.col(settings.renewal_date_column).alias(RENEWAL_DATE))
    if last_usage:
        extra.append(pl.col(last_usage).cast(pl.Date).alias(LAST_USAGE))
    return frame.select(
        pl.col(ID).cast(pl.String).alias("customer_id"),
        pl.col(STAGE),
        pl.col(ENTERED),
        days_in_stage(as_of).alias(DAYS_IN_STAGE),
        expected_days(rules, segment=segment).alias(EXPECTED_DAYS),
        owner.alias(OWNER),
        *extra,
        *keep,
    )
