"""A backfill's metrics: partial aggregates per customer and day, merged day by day.

Each metric's partial aggregates (the same ones that let `compute_metrics` work
in batches) are computed once per customer and day; a day's metrics then
merge the partials of the days in its window, or carry the all-history ones
forward by one day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace

import polars as pl

from ..columns import ID, TIMESTAMP
from ..errors import DataError, Problem
from ..expressions import ExpressionError, compile_expression, kind_of
from ..inputs.usage import Usage
from ..rules.model import USAGE, Rules
from .compute import (
    ROWS,
    MetricsResult,
    Plan,
    build_plan,
    combine,
    default_kinds,
    finish,
    metric_columns,
    source_metrics,
)

DAY = "__usage_day"
KEY = "__customer_key"
PAIR = "__customer_value"


def _days(frame: pl.DataFrame, first: dt.date | None, last: dt.date) -> pl.DataFrame:
    """The rows of ``frame`` (sorted by DAY) whose day is in (first excluded) .. last."""
    days = frame[DAY]
    lo = 0 if first is None else int(days.search_sorted(first, side="right"))
    hi = int(days.search_sorted(last, side="right"))
    return frame.slice(lo, max(hi - lo, 0))


class MetricsReplay:
    """Metrics for a run of consecutive as-of dates, without regrouping all the usage daily.

    The usage is grouped once by customer and day into the same partial
    aggregates that batches use (``where`` applied, no window). A day's
    metrics then merge the partials of the days they cover: the window's
    days for a metric with ``window_days``, and for the others the previous
    day's merged partials plus the new day's. Distinct counts (`n_unique`) count
    (customer, value) pairs by the first day each was seen, or within the window.
    Customers are grouped by an integer key rather than their text id.

    Equal to `compute_metrics` for each day (tests/test_metrics.py checks it);
    ``supported`` is false when a `where` reads the as-of date (it changes
    from day to day), and then callers use `compute_metrics` for each day.
    """

    def __init__(self, rules: Rules, usage: pl.DataFrame | pl.LazyFrame,
                 schema: dict[str, pl.DataType], customer_ids: pl.DataFrame,
                 start: dt.date, *, name: str = USAGE, label: str = "the usage export",
                 lookup: bool = False) -> None:
        # one source: ``rules`` holds its metrics, ``usage`` its rows with their customer;
        # ``lookup``: the customer came through a lookup (a NULL one: a key it lacks)
        self.rules, self.schema, self.name, self.lookup = rules, schema, name, lookup
        self.supported = where_ignores_as_of(rules, schema, start)
        if not self.supported:
            return
        plan = build_plan(rules, schema, start, label)  # raises for bad metrics, as a run would
        self.kinds = plan.kinds
        # text ids become integer keys (the same string gets the same key in a process)
        key = pl.col(ID).cast(pl.String).cast(pl.Categorical).to_physical()
        self.ids = customer_ids.select(ID, key.alias(KEY))
        windows = sorted({m.window_days or 0 for m in rules.metrics.values()})
        frame = usage.lazy()
        keep = [KEY, DAY, TIMESTAMP, *[c for c in metric_columns(rules)
                                        if c in schema and c not in (ID, TIMESTAMP)]]
        self.null_timestamps = int(
            frame.select(pl.col(TIMESTAMP).is_null().sum()).collect(engine="streaming").item())
        # the rows once, in memory, with only the columns the metrics read
        frame = frame.filter(pl.col(TIMESTAMP).is_not_null()).with_columns(
            key.alias(KEY), pl.col(TIMESTAMP).dt.date().alias(DAY)).select(
            list(dict.fromkeys(keep))).collect(engine="streaming").lazy()
        # one plan and one daily table per window length (0: all history); the day's rows
        # count (ROWS) rides with the all-history group
        self.groups: list[tuple[int, Plan, pl.DataFrame]] = []
        self.distinct: list[tuple[str, int, pl.DataFrame]] = []
        for window in [0, *[w for w in windows if w]]:
            names = {n: m.model_copy(update={"window_days": None})
                     for n, m in rules.metrics.items() if (m.window_days or 0) == window}
            sub = build_plan(rules.model_copy(update={"metrics": names}), schema, start, label)
            if window and len(sub.partials) == 1 and not sub.distinct:
                continue
            daily = frame.group_by(KEY, DAY).agg(sub.partials).sort(DAY)
            self.groups.append((window, sub, daily.collect(engine="streaming")))
            for name, cond, column in sub.distinct:
                # a (customer, value) pair as one integer: distinct counts on one column
                value = (pl.col(column).cast(pl.Categorical).to_physical()
                         if schema[column] == pl.String else pl.col(column).rank("dense"))
                rows = (frame if cond is None else frame.filter(cond)).filter(
                    pl.col(column).is_not_null()).select(
                    (pl.col(KEY).cast(pl.Int64) * 2**32 + value.cast(pl.Int64)).alias(PAIR),
                    pl.col(DAY))
                pairs = (rows.unique() if window else
                         rows.group_by(PAIR).agg(pl.col(DAY).min())).sort(DAY)
                self.distinct.append((name, window, pairs.collect(engine="streaming")))
        self.carried: pl.DataFrame | None = None  # all-history partials up to the last day
        self.carried_distinct: dict[str, pl.DataFrame] = {}
        self.day: dt.date | None = None

    def metrics(self, day: dt.date) -> MetricsResult:
        """The metrics as `compute_metrics` gives them for ``day``; days must come in order."""
        if self.day is not None and day <= self.day:
            raise ValueError("days must come in increasing order")
        previous, self.day = self.day, day
        merged: pl.DataFrame | None = None
        after = 0
        for window, plan, daily in self.groups:
            if window:
                rows = _days(daily, day - dt.timedelta(days=window), day)
                part = rows.group_by(KEY).agg(plan.combines)
                finals = [f for f in plan.finals if f.meta.output_name() != ROWS]
            else:
                new = _days(daily, previous, day).drop(DAY)
                both = new if self.carried is None else pl.concat([self.carried, new])
                part = self.carried = both.group_by(KEY).agg(plan.combines)
                finals = plan.finals
                after = int(_days(daily, day, dt.date.max)[ROWS].sum() or 0)
            part = part.select(pl.col(KEY), *finals)
            merged = part if merged is None else merged.join(part, on=KEY, how="full",
                                                             coalesce=True)
        assert merged is not None
        for name, window, pairs in self.distinct:
            if window:
                seen = _days(pairs, day - dt.timedelta(days=window), day).select(
                    pl.col(PAIR).unique())
            else:
                seen = _days(pairs, previous, day)
            customer = (pl.col(PAIR) // 2**32).cast(self.ids.schema[KEY]).alias(KEY)
            new = seen.group_by(customer).agg(pl.len().cast(pl.Int64).alias(name))
            if window:
                counted = new
            else:
                carried = self.carried_distinct.get(name)
                counted = new if carried is None else pl.concat([carried, new]).group_by(
                    KEY).agg(pl.col(name).sum())
                self.carried_distinct[name] = counted
            merged = merged.join(counted, on=KEY, how="full", coalesce=True)
        known = self.ids.join(merged, on=KEY, how="left", coalesce=True).drop(KEY)
        unknown = merged.join(self.ids, on=KEY, how="anti")
        unmatched = int(merged.filter(pl.col(KEY).is_null())[ROWS].sum() or 0) if (
            self.lookup) else 0
        result = MetricsResult(
            values=finish(self.rules, known, self.kinds),
            kinds=self.kinds,
            usage_rows=int(merged[ROWS].sum() or 0),
            unknown_customer_rows=int(unknown[ROWS].sum() or 0) - unmatched,
            null_timestamp_rows=self.null_timestamps,
            after_as_of_rows=after,
            unmatched_key_rows=unmatched,
        )
        return replace(result, by_source={self.name: result.counts()})


class SourcesReplay:
    """A backfill's metrics over every usage source, for consecutive days up to ``end``.

    Each source is read once: its rows up to ``end`` are grouped by a
    :class:`MetricsReplay` (joined with its lookup on the way), or, when a metric's
    `where` reads the as-of date, kept in memory and aggregated afresh each day. Metrics
    of sources not given take their defaults.
    """

    def __init__(self, rules: Rules, sources: Mapping[str, Usage], customer_ids: pl.DataFrame,
                 start: dt.date, end: dt.date) -> None:
        self.rules, self.ids = rules, customer_ids
        stop = pl.lit(dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
                      dtype=pl.Datetime("us"))
        # the rows up to the last day (and those without a timestamp, to count them)
        until = pl.col(TIMESTAMP).is_null() | (pl.col(TIMESTAMP) < stop)
        self.replays: dict[str, MetricsReplay] = {}
        self.in_memory: dict[str, Usage] = {}
        # rows after the last day: after every day's as-of date, as a run counts them
        self.beyond: dict[str, int] = {}
        problems: list[Problem] = []
        for name, usage in sources.items():
            self.beyond[name] = int(usage.rows.select((pl.col(TIMESTAMP) >= stop).sum())
                                    .collect(engine="streaming").item() or 0)
            one = rules.for_source(name)
            try:
                replay = MetricsReplay(one, usage.frame.filter(until), usage.schema,
                                       customer_ids, start, name=name, label=usage.label(),
                                       lookup=usage.lookup is not None)
            except DataError as error:
                problems += error.problems
                continue
            if replay.supported:
                self.replays[name] = replay
            else:  # a `where` reads the as-of date: each day from the rows in memory
                rows = usage.rows.filter(until).collect(engine="streaming")
                self.in_memory[name] = replace(usage, rows=rows.lazy())
        if problems:
            raise DataError(problems)
        self.defaults = {
            name: MetricsResult(values=finish(one, customer_ids.select(ID), kinds), kinds=kinds)
            for name in rules.usage_sources if name not in sources
            and (one := rules.for_source(name)).metrics
            for kinds in [default_kinds(one)]
        }

    def metrics(self, day: dt.date) -> MetricsResult:
        """Every metric for ``day``, as `compute_metrics` gives it; days come in order."""
        results: dict[str, MetricsResult] = {}
        for name in self.rules.usage_sources:
            if name in self.replays:
                results[name] = self.replays[name].metrics(day)
            elif name in self.in_memory:
                results[name] = source_metrics(self.rules.for_source(name),
                                               self.in_memory[name], self.ids, day)
            elif name in self.defaults:
                results[name] = self.defaults[name]
            if name in self.beyond:
                result = results[name]
                after = result.after_as_of_rows + self.beyond[name]
                results[name] = replace(result, after_as_of_rows=after, by_source={
                    name: {**result.by_source[name], "after_as_of": after}})
        return combine(self.rules, self.ids, results)


def where_ignores_as_of(rules: Rules, schema: dict[str, pl.DataType], day: dt.date) -> bool:
    """True when no metric's `where` reads the as-of date (its rows are the same every day)."""
    kinds = {name: kind_of(dtype) for name, dtype in schema.items()}
    for m in rules.metrics.values():
        if not m.where:
            continue
        try:
            a = compile_expression(m.where, kinds, as_of=day, condition=True)
            b = compile_expression(m.where, kinds, as_of=day + dt.timedelta(days=1),
                                   condition=True)
        except ExpressionError:
            return True  # build_plan reports it
        if str(a.as_condition()) != str(b.as_condition()):
            return False
    return True
