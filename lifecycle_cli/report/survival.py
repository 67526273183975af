"""Kaplan-Meier estimates of how long visits last, in whole days, per group.

A visit that is still going on when we stop looking (the customer is still in
the stage) is *censored*: we know it lasted at least that long, not how long.
Kaplan-Meier counts such visits as at risk up to their censoring time, so
open visits pull the estimate up instead of being dropped (which would
underestimate the time) or counted as finished (which would too).

Visits that we only see from some age on (they began before the period a
report looks at) are *left-truncated*: each has an ``entry``, the age at which
it came under observation, and is at risk only from then on. Without that,
long visits that happen to be still open at the start of the period would
count as if we had watched them from day 0, and the estimate would be too
long.

Everything is a handful of Polars group-bys and cumulative sums over the whole
frame; no loop over visits or groups.
"""

from __future__ import annotations

import polars as pl

TIME = "days"
AT_RISK = "at_risk"
EVENTS = "left"
CENSORED = "censored"
SURVIVAL = "survival"

# S(t) is a product of fractions; 0.5 may come out as 0.5000000000000001
_TOLERANCE = 1e-9


def kaplan_meier(
    visits: pl.DataFrame | pl.LazyFrame,
    *,
    by: str | list[str],
    duration: str,
    event: str,
    entry: str | None = None,
) -> pl.DataFrame:
    """The Kaplan-Meier survival curve of ``duration`` per ``by`` group.

    ``visits`` holds one row per visit: ``duration`` (whole days, >= 0), ``event``
    (true: the visit ended then; false: censored then) and optionally ``entry``
    (the age in days from which the visit was observed, 0 <= entry <= duration;
    default 0 for all). Returns one row per group and day on which a visit ended
    or was censored, in order: ``by``, ``days``, ``at_risk`` (visits observed and
    not yet ended just before that day), ``left``, ``censored`` and ``survival``,
    the estimated share of visits lasting longer than ``days``:
    S(t) = prod over t_i <= t of (1 - left_i / at_risk_i).
    """
    keys = [by] if isinstance(by, str) else list(by)
    lf = visits.lazy()
    ended = pl.col(event).cast(pl.Boolean)
    exits = lf.group_by(*keys, pl.col(duration).cast(pl.Int64).alias(TIME)).agg(
        ended.sum().cast(pl.Int64).alias(EVENTS),
        (~ended).sum().cast(pl.Int64).alias(CENSORED),
    )
    start = pl.col(entry).cast(pl.Int64) if entry is not None else pl.lit(0, dtype=pl.Int64)
    entries = lf.group_by(*keys, start.alias(TIME)).agg(pl.len().cast(pl.Int64).alias("entered"))
    changes = exits.join(entries, on=[*keys, TIME], how="full", coalesce=True).with_columns(
        pl.col(EVENTS, CENSORED, "entered").fill_null(0)
    ).sort(*keys, TIME)
    out = pl.col(EVENTS) + pl.col(CENSORED)
    # at risk at t: observed by t (entry <= t) and not gone before t (duration >= t)
    at_risk = pl.col("entered").cum_sum().over(keys) - (out.cum_sum().over(keys) - out)
    hazard = pl.when(pl.col(AT_RISK) > 0).then(pl.col(EVENTS) / pl.col(AT_RISK)).otherwise(0.0)
    return (
        changes.with_columns(at_risk.alias(AT_RISK))
        .with_columns((1.0 - hazard).cum_prod().over(keys).alias(SURVIVAL))
        .filter(out > 0)
        .select(*keys, TIME, AT_RISK, EVENTS, CENSORED, SURVIVAL)
        .collect()
    )


def quantile_days(curve: pl.DataFrame, by: str | list[str], level: float, name: str
                  ) -> pl.DataFrame:
    """Per group, the first day on which the curve drops to ``level`` or below (``by``,
    ``name``); groups whose curve never gets that low are absent ("not reached").

    ``level=0.5`` gives the median time; ``0.1`` the time by which 90% have left.
    """
    return (
        curve.filter(pl.col(SURVIVAL) <= level + _TOLERANCE)
        .group_by(by)
        .agg(pl.col(TIME).min().alias(name))
    )


def survival_at(curve: pl.DataFrame, points: pl.DataFrame, by: str | list[str], at: str,
                name: str) -> pl.DataFrame:
    """``points`` (one row per group: ``by``, ``at``) with ``name``: the curve of its
    group at day ``at``, the estimated share of visits lasting longer than ``at`` days;
    1.0 before the group's first exit, NULL where ``at`` is NULL or the group has no
    curve."""
    keys = [by] if isinstance(by, str) else list(by)
    known = points.filter(pl.col(at).is_not_null()).select(*keys, pl.col(at).cast(pl.Int64))
    found = (
        known.join(curve.select(*keys, TIME, SURVIVAL), on=keys)
        .group_by(by)
        .agg(pl.col(SURVIVAL).filter(pl.col(TIME) <= pl.col(at)).min().fill_null(1.0)
             .alias(name))
    )
    return points.join(found, on=keys, how="left", maintain_order="left")
