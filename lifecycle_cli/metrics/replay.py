"""A backfill's metrics: partial aggregates per customer and day, merged day by day.

Each metric's partial aggregates (the same ones that let `compute_metrics` work
in batches) are computed once per customer and day; a day's metrics then
merge the partials of the days in its window, or carry the all-history ones
forward by one day.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..columns import ID, TIMESTAMP
from ..expressions import ExpressionError, compile_expression, kind_of
from ..rules.model import Rules
from .aggregations import SEQ
from .compute import ROWS, MetricsResult, Plan, build_plan, finish, metric_columns

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
                 start: dt.date) -> None:
        self.rules, self.schema = rules, schema
        self.supported = _where_ignores_as_of(rules, schema, start)
        if not self.supported:
            return
        plan = build_plan(rules, schema, start)  # raises for bad metrics, as a run would
        self.kinds = plan.kinds
        # text ids become integer keys (the same string gets the same key in a process)
        key = pl.col(ID).cast(pl.String).cast(pl.Categorical).to_physical()
        self.ids = customer_ids.select(ID, key.alias(KEY))
        windows = sorted({m.window_days or 0 for m in rules.metrics.values()})
        frame = usage.lazy()
        keep = [KEY, DAY, TIMESTAMP, *[c for c in metric_columns(rules)
                                        if c in schema and c not in (ID, TIMESTAMP)]]
        if plan.needs_seq:  # first/last break timestamp ties by input order
            frame = frame.with_row_index(SEQ)
            keep.append(SEQ)
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
            sub = build_plan(rules.model_copy(update={"metrics": names}), schema, start)
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
        return MetricsResult(
            values=finish(self.rules, known, self.kinds),
            kinds=self.kinds,
            usage_rows=int(merged[ROWS].sum() or 0),
            unknown_customer_rows=int(unknown[ROWS].sum() or 0),
            null_timestamp_rows=self.null_timestamps,
            after_as_of_rows=after,
        )


def _where_ignores_as_of(rules: Rules, schema: dict[str, pl.DataType], day: dt.date) -> bool:
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
