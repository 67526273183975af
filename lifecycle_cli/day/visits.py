"""Visits: one customer's stay in one stage, and the time each customer spent in each stage.

A visit begins with a move into its stage (a transition, the initial assignment, a stage
changed by hand in the export that the run kept), or before the history, and ends with the
next move out of it; the visit a customer is in now goes on. Everything here is made from
the same two things, the moves (:func:`moves_from`) and a stage table, so that the report's
time in stage, the ``visits`` table and the customers output's history columns agree:

- a visit that ended is a move out of its stage, which began ``days_in_from_stage`` days
  before the move (so a hand edit of the date counts, and a visit begun before the history
  keeps its whole length);
- the visit going on is the stage table's row: it began on ``stage_entered_at`` and has
  lasted until the period's end, or until the customer's last export if that came first;
- the rule that began a visit is the customer's move just before it, when that move went
  into the visit's stage (none: the visit began before the history, or came from the export).

``history_columns: true`` adds, per stage, the days over every visit and the last entry to
the customers output. The state keeps per customer and stage the visits that ended
(:data:`~lifecycle_cli.columns.TOTALS_SCHEMA`, :func:`add_totals`), so a run adds its own
moves to the day before's totals instead of reading the whole history.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..columns import (
    BY_HAND_RULE,
    DAYS_IN_STAGE,
    ENTERED,
    ID,
    MOVES_SCHEMA,
    SEEN,
    STAGE,
    TOTALS_SCHEMA,
    VISIT_SCHEMA,
    days_total_column,
    last_entered_column,
)


def moves_from(transitions: pl.DataFrame, overrides: pl.DataFrame) -> pl.DataFrame:
    """Every move (`MOVES_SCHEMA`, customer ids as text), in date, customer and hop order: the
    transitions, and the stages changed by hand in the export that a run kept (rule
    ``(by hand)``, hop -1: before the run's own moves). A hand edit of the date alone is no
    move."""
    frames = []
    if transitions.height:
        frames.append(transitions.select(pl.col(c).cast(t) for c, t in MOVES_SCHEMA.items()))
    if overrides.height:
        moved = (pl.col("kept") == "export") & pl.col("state_stage").ne_missing(
            pl.col("export_stage"))
        frames.append(overrides.filter(moved).select(
            pl.col("as_of").cast(pl.Date),
            pl.col("customer_id").cast(pl.String),
            pl.col("state_stage").alias("from_stage"),
            pl.col("export_stage").alias("to_stage"),
            pl.lit(BY_HAND_RULE).alias("rule_id"),
            pl.lit(-1, dtype=pl.Int64).alias("hop"),
            (pl.col("as_of") - pl.col("state_entered_at")).dt.total_days().cast(pl.Int64)
            .alias("days_in_from_stage"),
        ))
    if not frames:
        return pl.DataFrame(schema=MOVES_SCHEMA)
    return pl.concat(frames).sort("as_of", "customer_id", "hop", maintain_order=True)


def last_moves(moves: pl.DataFrame) -> pl.DataFrame:
    """Each customer's last move (``moves`` in date and hop order): where its visit began."""
    return (moves.sort("customer_id", "as_of", "hop", maintain_order=True)
            .group_by("customer_id", maintain_order=True).last())


def visits(
    moves: pl.DataFrame,
    current: pl.DataFrame,
    end: dt.date,
    *,
    start: dt.date | None = None,
    before: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Every visit (`VISIT_SCHEMA`): those that ended with one of ``moves`` and those going
    on in ``current``, by customer id and in the order they happened.

    ``current``: the stage table at ``end`` (``customer_id``, ``stage``,
    ``stage_entered_at``, ``last_seen``). ``before``: moves before those of ``moves`` (each
    customer's last is enough, see :func:`last_moves`), to name the rule that began the
    visits going on when ``moves`` begin. ``start``: keep only the visits in progress at
    some time from ``start`` on (not those of customers whose last export came before it).
    ``days`` is empty when the start is unknown.
    """
    flagged = [moves.select(*MOVES_SCHEMA).with_columns(pl.lit(True).alias("__in_period"))]
    if before is not None and before.height:
        flagged.insert(0, before.select(*MOVES_SCHEMA).with_columns(
            pl.lit(False).alias("__in_period")))
    ordered = pl.concat(flagged).sort("customer_id", "as_of", "hop", maintain_order=True)
    ordered = ordered.with_columns(
        pl.col("rule_id").shift(1).over("customer_id").alias("__prior_rule"),
        pl.col("to_stage").shift(1).over("customer_id").alias("__prior_to"),
    )
    ended = ordered.filter(pl.col("__in_period") & pl.col("from_stage").is_not_null()).select(
        "customer_id",
        pl.col("from_stage").alias("stage"),
        (pl.col("as_of") - pl.duration(days=pl.col("days_in_from_stage"))).alias("entered"),
        pl.col("as_of").alias("exited"),
        pl.col("as_of").alias("__until"),
        pl.when(pl.col("__prior_to") == pl.col("from_stage")).then(pl.col("__prior_rule"))
        .alias("rule_in"),
        pl.col("rule_id").alias("rule_out"),
        pl.col("as_of").alias("__order_day"),
        pl.col("hop").alias("__order_hop"),
    )
    last = ordered.group_by("customer_id", maintain_order=True).agg(
        pl.col("rule_id").last().alias("__last_rule"), pl.col("to_stage").last().alias("__last_to"))
    going = (
        current.select(pl.col("customer_id").cast(pl.String), STAGE, ENTERED, SEEN)
        .filter(pl.col(STAGE).is_not_null())
        .join(last, on="customer_id", how="left", maintain_order="left")
        .select(
            "customer_id",
            STAGE,
            pl.col(ENTERED).alias("entered"),
            pl.lit(None, dtype=pl.Date).alias("exited"),
            pl.min_horizontal(pl.col(SEEN), pl.lit(end, dtype=pl.Date)).alias("__until"),
            pl.when(pl.col("__last_to") == pl.col(STAGE)).then(pl.col("__last_rule"))
            .alias("rule_in"),
            pl.lit(None, dtype=pl.String).alias("rule_out"),
            pl.lit(None, dtype=pl.Date).alias("__order_day"),  # last: sorts after the moves
            pl.lit(None, dtype=pl.Int64).alias("__order_hop"),
        )
    )
    every = pl.concat([ended, going], how="vertical_relaxed").with_columns(
        (pl.col("__until") - pl.col("entered")).dt.total_days().cast(pl.Int64).alias("days"))
    if start is not None:
        every = every.filter(pl.col("__until") >= pl.lit(start, dtype=pl.Date))
    every = every.sort("customer_id", "__order_day", "__order_hop", nulls_last=True,
                       maintain_order=True)
    return every.select(pl.col(c).cast(t) for c, t in VISIT_SCHEMA.items())


# -- the totals the state keeps, and the history columns ---------------------------------------


def _counted_days(days: pl.Expr) -> pl.Expr:
    """A visit's days as totals count them: known and not negative (a start after the end)."""
    return pl.when(days >= 0).then(days)


def totals_of(moves: pl.DataFrame) -> pl.DataFrame:
    """Per customer and stage, the visits that ``moves`` ended (`TOTALS_SCHEMA`)."""
    ended = moves.filter(pl.col("from_stage").is_not_null()).select(
        "customer_id",
        pl.col("from_stage").alias("stage"),
        pl.lit(1, dtype=pl.Int64).alias("visits"),
        _counted_days(pl.col("days_in_from_stage")).alias("days"),
        (pl.col("as_of") - pl.duration(days=pl.col("days_in_from_stage"))).alias("last_entered"),
    )
    return _regroup(ended)


def _regroup(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("customer_id", "stage", maintain_order=True)
        .agg(pl.col("visits").sum(), pl.col("days").sum(), pl.col("last_entered").max())
        .select(pl.col(c).cast(t) for c, t in TOTALS_SCHEMA.items())
    )


def add_totals(base: pl.DataFrame | None, moves: pl.DataFrame) -> pl.DataFrame:
    """The totals after a day: those of the day before (``base``; None: none) with the visits
    that the day's ``moves`` ended added: ``base``'s rows in their order, then the customers'
    first visits to a stage. One join, no sort: a nightly run adds its few moves to the
    whole table in one pass."""
    today = totals_of(moves)
    if base is None or base.height == 0:
        return today
    added = base.lazy().select(pl.col(c).cast(t) for c, t in TOTALS_SCHEMA.items()).join(
        today.lazy(), on=["customer_id", "stage"], how="full", coalesce=True,
        maintain_order="left_right", suffix="_today")
    return added.select(
        "customer_id",
        "stage",
        (pl.col("visits").fill_null(0) + pl.col("visits_today").fill_null(0)).alias("visits"),
        (pl.col("days").fill_null(0) + pl.col("days_today").fill_null(0)).alias("days"),
        pl.max_horizontal("last_entered", "last_entered_today").alias("last_entered"),
    ).collect()


def history_values(final: pl.DataFrame, totals: pl.DataFrame, stages: list[str]) -> pl.DataFrame:
    """The customers output's history columns for the customers of ``final`` (ID, STAGE,
    ENTERED, DAYS_IN_STAGE), in its row order: per stage, ``days_in_<stage>_total`` (the days
    of every visit that ended, known and not negative, plus the days of the visit going on
    in it; 0 for a stage never visited) and ``last_entered_<stage>`` (the day the latest
    visit to it began; empty when never, or unknown). ``totals`` has one row per customer
    and stage at most: a join per stage places them."""
    frame = final.lazy().select(
        pl.col(ID).cast(pl.String).alias("customer_id"),
        pl.col(STAGE).alias("__stage"),
        pl.col(ENTERED).alias("__entered"),
        pl.col(DAYS_IN_STAGE).alias("__now"),
    )
    ended = totals.lazy()
    columns = []
    for i, s in enumerate(stages):
        frame = frame.join(
            ended.filter(pl.col("stage") == s).select(
                "customer_id", pl.col("days").alias(f"__days_{i}"),
                pl.col("last_entered").alias(f"__last_{i}")),
            on="customer_id", how="left", maintain_order="left")
        here = pl.col("__stage") == s
        now = pl.when(here).then(_counted_days(pl.col("__now"))).fill_null(0)
        columns += [
            (pl.col(f"__days_{i}").fill_null(0) + now).cast(pl.Int64).alias(days_total_column(s)),
            pl.max_horizontal(pl.col(f"__last_{i}"), pl.when(here).then(pl.col("__entered")))
            .cast(pl.Date).alias(last_entered_column(s)),
        ]
    return frame.select(columns).collect()
