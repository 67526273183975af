# mypy: disable-error-code="list-item,arg-type,assignment,attr-defined,misc"
# (sqlglot's builders are typed loosely, as in `script`)
"""A backfill's metrics on an SQL engine: per-customer-per-day partials in the engine,
merged for each as-of day (the design of `metrics.replay.MetricsReplay`, in SQL).

Once per source, one ``GROUP BY`` (customer, local day) of its rows up to the last
as-of day makes a partials table (:func:`partials_query`): ``__rows`` and, per metric
(``where`` applied as ``CASE``, no window), the partial forms the batches use: the
rows that count (``__c{i}``), a sum and a count of values (``__s{i}``, ``__n{i}``),
a min or max (``__m{i}``), and for `first`/`last` the day's earliest / latest
timestamp of the rows that count (``__t{i}``) with the smallest / largest value at
it (``__v{i}``: the tie-breaker of `script.AGGREGATION_SQL`). `n_unique` keeps
(customer, value, first day seen) pairs, or (customer, value, day) for a windowed
one (:func:`distinct_query`).

Each as-of day D: :func:`carry_query` merges the partials of the days since the
previous as-of day into the all-history ones carried from it (one row per customer);
:func:`day_query` gives a table shaped as `script.source_query`'s (ID, ``__rows``,
one column per metric, ``__left_`` + metric) from them, from the partials of each
window's days (D - window + 1 .. D) and from the pairs, which `script.metrics_query`
turns into the day's metrics, with zeros and defaults, as for a run. The partials and
pairs tables are in day order, so a window's rows lie together. A source whose `where`
reads the as-of date is aggregated afresh each day (`script.source_query`), as
`MetricsReplay` falls back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import polars as pl
from sqlglot import exp

from ..columns import ID, TIMESTAMP
from ..expressions import compile_expression
from ..inputs.usage import Usage
from ..metrics.compute import MetricsResult, compute_metrics
from ..metrics.replay import where_ignores_as_of
from ..rules.model import Rules
from . import script
from .backend import Backend
from .day import create_sql, metrics_result, register_sources
from .expressions import (
    BIGINT,
    DOUBLE,
    SqlCompiler,
    and_,
    case,
    cast,
    date_literal,
    eq,
    not_,
    null,
    number,
    timestamp_literal,
    true,
)

AS = script.AS
CUSTOMER = script.CUSTOMER
DAY = "__day"
VALUE = "__value"
CUSTOMERS = "lc_replay_customers"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(exp.to_identifier(name, quoted=True), table=table)


def _part(kind: str, i: int) -> str:
    return f"__{kind}{i}"


def _rows(rules: Rules, source: script.SourceTable, end: dt.date, start: dt.date,
          dialect: str) -> tuple[exp.Select, list[exp.Expression | None]]:
    """The rows before ``end`` (a day) with their customer and local day, and each
    metric's `where` as SQL over them (None: every row)."""
    stop = timestamp_literal(dt.datetime.combine(end, dt.time()))
    compiler = SqlCompiler(start, dialect, name=source.col)
    if source.lookup is not None:
        customer: exp.Expression = _col(source.lookup_id, "l")
    else:
        customer = source.col(ID)
    rows = exp.select(customer.as_(CUSTOMER, **AS),
                      cast(source.col(TIMESTAMP), "DATE").as_(DAY, **AS),
                      exp.Column(this=exp.Star(), table=exp.to_identifier("u"))).from_(
        script._table(source.table, "u")).where(
        exp.LT(this=source.col(TIMESTAMP), expression=stop))
    if source.lookup is not None:
        table, key = source.lookup
        rows = rows.join(script._table(table, "l"), on=eq(_col(key, "l"), source.col(key)),
                         join_type="LEFT")
    conds: list[exp.Expression | None] = []
    for metric in rules.metrics.values():
        if metric.where:
            compiled = compile_expression(metric.where, dict(source.kinds), as_of=start,
                                          condition=True)
            conds.append(script._requalify(compiler.expression(compiled, condition=True)))
        else:
            conds.append(None)
    return rows, conds


def partials_query(rules: Rules, source: script.SourceTable, end: dt.date, start: dt.date,
                   dialect: str) -> exp.Select:
    """One row per customer and local day of the rows before ``end``: ``CUSTOMER``,
    ``DAY``, ``__rows`` and each metric's partials (see the module)."""
    rows, conds = _rows(rules, source, end, start, dialect)
    ts = source.col(TIMESTAMP)
    out: list[exp.Expression] = [_col(CUSTOMER), _col(DAY),
                                 exp.Count(this=exp.Star()).as_(script.ROWS, **AS)]
    picks: list[exp.Expression] = []
    for i, (cond, metric) in enumerate(zip(conds, rules.metrics.values(), strict=True)):
        holds = cond if cond is not None else true()
        out.append(exp.Sum(this=case([(holds.copy(), number(1))], number(0))).as_(
            _part("c", i), **AS))
        if not metric.column or metric.agg in ("count", "any", "n_unique"):
            continue
        kind = source.kinds.get(metric.column, script.Kind.NULL)
        value = source.col(metric.column) if cond is None else case(
            [(cond.copy(), source.col(metric.column))])
        if metric.agg in ("sum", "mean"):
            numeric = script._numeric(value, kind)
            if metric.agg == "mean":
                numeric = cast(numeric, DOUBLE)
            out.append(exp.Sum(this=numeric).as_(_part("s", i), **AS))
            out.append(exp.Count(this=numeric.copy()).as_(_part("n", i), **AS))
        elif metric.agg in ("min", "max"):
            agg = exp.Min if metric.agg == "min" else exp.Max
            out.append(agg(this=value).as_(_part("m", i), **AS))
        else:  # first / last: the day's pick and its timestamp
            form = script.sql_of(metric.agg)
            stamp = exp.Min if form.picks == "MIN" else exp.Max
            pick = f"__pick{i}"
            picks.append(exp.Window(this=stamp(this=case([(holds.copy(), ts.copy())])),
                                    partition_by=[_col(CUSTOMER), _col(DAY)]).as_(pick, **AS))
            at = and_(holds.copy(), eq(ts.copy(), _col(pick, "u")))
            out.append(stamp(this=case([(holds.copy(), ts.copy())])).as_(_part("t", i), **AS))
            out.append(form.aggregate(case([(at, source.col(metric.column))]), at.copy(), kind)
                       .as_(_part("v", i), **AS))
    inner = rows
    if picks:  # the window over the day's rows needs the customer and day as columns
        inner = exp.select(exp.Star(), *picks).from_(rows.subquery("u"))
    return exp.select(*out).from_(inner.subquery("u")).group_by(_col(CUSTOMER), _col(DAY))


def distinct_query(rules: Rules, source: script.SourceTable, end: dt.date, start: dt.date,
                   dialect: str, index: int) -> exp.Select:
    """The (customer, value) pairs of the `n_unique` metric at ``index``: with the first
    day each was seen, or, for a windowed metric, each day it was seen."""
    rows, conds = _rows(rules, source, end, start, dialect)
    metric = list(rules.metrics.values())[index]
    value = source.col(metric.column or "")
    keep = and_(not_(exp.Is(this=value, expression=null())),
                *([conds[index]] if conds[index] is not None else []))
    query = exp.select(_col(CUSTOMER), value.copy().as_(VALUE, **AS)).from_(
        rows.subquery("u")).where(keep)
    if metric.window_days:
        return query.select(_col(DAY)).distinct()
    return query.select(exp.Min(this=_col(DAY)).as_(DAY, **AS)).group_by(
        _col(CUSTOMER), _col(VALUE))

def _partial_names(rules: Rules, i: int) -> list[tuple[str, type[exp.AggFunc]]]:
    """The partial columns of the metric at ``i`` and how two of them merge."""
    metric = list(rules.metrics.values())[i]
    out: list[tuple[str, type[exp.AggFunc]]] = [(_part("c", i), exp.Sum)]
    if not metric.column or metric.agg in ("count", "any", "n_unique"):
        return out
    if metric.agg in ("sum", "mean"):
        return [*out, (_part("s", i), exp.Sum), (_part("n", i), exp.Sum)]
    if metric.agg in ("min", "max"):
        return [*out, (_part("m", i), exp.Min if metric.agg == "min" else exp.Max)]
    stamp = exp.Min if script.sql_of(metric.agg).picks == "MIN" else exp.Max
    return [*out, (_part("t", i), stamp), (_part("v", i), stamp)]


def carry_query(rules: Rules, indices: list[int], carried: str | None, partials: str,
                previous: dt.date | None, day: dt.date) -> exp.Select:
    """The all-history partials up to ``day``, one row per customer: ``carried`` (those
    up to ``previous``) merged with the partials of the days after it, up to ``day``."""
    names = [(n, f) for i in indices for n, f in _partial_names(rules, i)]
    keep = [_col(CUSTOMER), _col(script.ROWS), *[_col(n) for n, _ in names]]
    new = exp.select(*keep).from_(script._table(partials)).where(and_(
        exp.LTE(this=_col(DAY), expression=date_literal(day)),
        *([exp.GT(this=_col(DAY), expression=date_literal(previous))]
          if previous is not None else [])))
    rows: exp.Expression = new if carried is None else exp.union(
        exp.select(*[k.copy() for k in keep]).from_(script._table(carried)), new,
        distinct=False)
    picks: list[exp.Expression] = []
    out: list[exp.Expression] = [_col(CUSTOMER), exp.Sum(this=_col(script.ROWS)).as_(
        script.ROWS, **AS)]
    for name, merge in names:
        if name.startswith("__v"):  # the value at the merged pick
            i = int(name[3:])
            pick = f"__pick{i}"
            picks.append(exp.Window(this=merge(this=_col(_part("t", i))),
                                    partition_by=[_col(CUSTOMER)]).as_(pick, **AS))
            out.append(merge(this=case([(eq(_col(_part("t", i)), _col(pick)), _col(name))]))
                       .as_(name, **AS))
        else:
            out.append(merge(this=_col(name)).as_(name, **AS))
    frame = exp.select(exp.Star(), *picks).from_(rows.subquery("r")) if picks else \
        exp.select(exp.Star()).from_(rows.subquery("r"))
    return exp.select(*out).from_(frame.subquery("p")).group_by(_col(CUSTOMER))


def merge_query(rules: Rules, table: str, indices: list[int], *, rows: bool,
                since: dt.date | None = None, until: dt.date | None = None) -> exp.Select:
    """The metrics at ``indices`` (n_unique apart) from the partials of ``table`` (the
    days ``since`` .. ``until`` where given), one row per customer: ID, ``__rows`` with
    ``rows``, each metric, and ``__left_`` + metric for one with a default."""
    out: list[exp.Expression] = [_col(CUSTOMER).as_(ID, **AS)]
    if rows:
        out.append(exp.Sum(this=_col(script.ROWS)).as_(script.ROWS, **AS))
    picks: list[exp.Expression] = []
    metrics = list(rules.metrics.items())
    for i in indices:
        name, metric = metrics[i]
        counted = exp.Coalesce(this=exp.Sum(this=_col(_part("c", i))), expressions=[number(0)])
        if metric.agg == "count":
            value: exp.Expression | None = cast(counted.copy(), BIGINT)
        elif metric.agg == "any":
            value = exp.GT(this=counted.copy(), expression=number(0))
        elif metric.agg == "sum":
            value = exp.Sum(this=_col(_part("s", i)))
        elif metric.agg == "mean":
            value = exp.Div(this=exp.Sum(this=_col(_part("s", i))), expression=exp.Nullif(
                this=exp.Sum(this=_col(_part("n", i))), expression=number(0)))
        elif metric.agg in ("min", "max"):
            value = (exp.Min if metric.agg == "min" else exp.Max)(this=_col(_part("m", i)))
        elif metric.agg in ("first", "last"):
            stamp = exp.Min if script.sql_of(metric.agg).picks == "MIN" else exp.Max
            pick = f"__pick{i}"
            picks.append(exp.Window(this=stamp(this=_col(_part("t", i))),
                                    partition_by=[_col(CUSTOMER)]).as_(pick, **AS))
            value = stamp(this=case([(eq(_col(_part("t", i)), _col(pick)),
                                      _col(_part("v", i)))]))
        elif metric.agg == "n_unique":
            value = None  # counted from its pairs (see day_query)
        else:  # an aggregation without a replay form
            raise NotImplementedError(metric.agg)
        if value is not None:
            out.append(value.as_(name, **AS))
        if metric.default is not None:
            out.append(counted.copy().as_(script.LEFT + name, **AS))
    bounds = [*([exp.GTE(this=_col(DAY), expression=date_literal(since))] if since else []),
              *([exp.LTE(this=_col(DAY), expression=date_literal(until))] if until else [])]
    frame = exp.select(exp.Star(), *picks).from_(script._table(table))
    if bounds:
        frame = frame.where(and_(*bounds))
    return exp.select(*out).from_(frame.subquery("p")).group_by(_col(CUSTOMER))


def day_query(rules: Rules, carried: str, partials: str, distinct: Mapping[int, str],
              day: dt.date) -> exp.Select:
    """The source's metrics for ``day``, shaped as `script.source_query`'s: the
    all-history ones from ``carried`` (:func:`carry_query`'s table for the day), each
    window's from the partials of its days, `n_unique` from its pairs (``distinct``: a
    metric's index -> its pairs table)."""
    metrics = list(rules.metrics.items())
    windows: dict[int, list[int]] = {}
    for i, (_, metric) in enumerate(metrics):
        windows.setdefault(metric.window_days or 0, []).append(i)
    query = exp.select(exp.Column(this=exp.Star(), table=exp.to_identifier("g"))).from_(
        merge_query(rules, carried, windows.get(0, []), rows=True).subquery("g"))
    for w, indices in windows.items():
        if not w:
            continue
        alias = f"w{w}"
        query = query.join(merge_query(rules, partials, indices, rows=False,
                                       since=day - dt.timedelta(days=w - 1), until=day)
                           .subquery(alias), on=eq(_col(ID, "g"), _col(ID, alias)),
                           join_type="LEFT")
        for i in indices:
            name, metric = metrics[i]
            if metric.agg != "n_unique":
                query = query.select(_col(name, alias))
            if metric.default is not None:
                query = query.select(_col(script.LEFT + name, alias))
    until = exp.LTE(this=_col(DAY), expression=date_literal(day))
    for i, table in distinct.items():
        name, metric = metrics[i]
        alias = f"d{i}"
        seen = exp.select(_col(CUSTOMER))
        if metric.window_days:
            since = exp.GTE(this=_col(DAY), expression=date_literal(
                day - dt.timedelta(days=metric.window_days - 1)))
            seen = seen.select(exp.Count(this=exp.Distinct(expressions=[_col(VALUE)])).as_(
                "n", **AS)).where(and_(until.copy(), since))
        else:
            seen = seen.select(exp.Count(this=exp.Star()).as_("n", **AS)).where(until.copy())
        query = query.join(seen.from_(script._table(table)).group_by(_col(CUSTOMER))
                           .subquery(alias), on=eq(_col(ID, "g"), _col(CUSTOMER, alias)),
                           join_type="LEFT").select(_col("n", alias).as_(name, **AS))
    return query


def counts_query(grouped: str, partials: str, customers: str, lookup: bool, day: dt.date
                 ) -> exp.Select:
    """A source's counts for ``day`` from its ``grouped`` table (:func:`day_query`'s) and
    its ``partials``: ``rows``, ``unknown_customer``, ``unmatched_key`` as
    `script.counts_query` gives them, and ``after_as_of`` (the rows of the later days up
    to the partials' end)."""
    def count(cond: exp.Expression, value: exp.Expression) -> exp.Expression:
        return cast(exp.Coalesce(this=exp.Sum(this=case([(cond, value)], number(0))),
                                 expressions=[number(0)]), BIGINT)

    g, k = _col(ID, "g"), _col(ID, "k")
    n = _col(script.ROWS, "g")
    missed = exp.Is(this=g.copy(), expression=null()) if lookup else exp.false()
    groups = exp.select(
        count(true(), n.copy()).as_("rows", **AS),
        count(and_(exp.Is(this=k, expression=null()), not_(missed)), n.copy()).as_(
            "unknown_customer", **AS),
        count(missed.copy(), n.copy()).as_("unmatched_key", **AS),
    ).from_(script._table(grouped, "g")).join(
        exp.select(_col(ID)).from_(script._table(customers)).distinct().subquery("k"),
        on=eq(k.copy(), g.copy()), join_type="LEFT")
    after = exp.select(count(exp.GT(this=_col(DAY), expression=date_literal(day)),
                             _col(script.ROWS)).as_("after_as_of", **AS)).from_(
        script._table(partials))
    return exp.select(*[_col(c, "b") for c in ("rows", "unknown_customer", "unmatched_key")],
                      _col("after_as_of", "a")).from_(groups.subquery("b")).join(
        after.subquery("a"), join_type="CROSS")


def outside_query(source: script.SourceTable, end: dt.date) -> exp.Select:
    """A source's rows that no day reads: ``without_timestamp``, ``beyond`` (from ``end``,
    the day after the last as-of day)."""
    ts = source.col(TIMESTAMP)
    stop = timestamp_literal(dt.datetime.combine(end, dt.time()))

    def count(cond: exp.Expression) -> exp.Expression:
        return cast(exp.Coalesce(this=exp.Sum(this=case([(cond, number(1))], number(0))),
                                 expressions=[number(0)]), BIGINT)

    return exp.select(count(exp.Is(this=ts, expression=null())).as_("without_timestamp", **AS),
                      count(exp.GTE(this=ts.copy(), expression=stop)).as_("beyond", **AS)
                      ).from_(script._table(source.table, "u"))


class SqlReplay:
    """`metrics.replay.SourcesReplay` on an SQL engine: each source grouped once by
    customer and day in the engine, each day's metrics merged there from the partials.

    Equal to `SourcesReplay` (and to `compute_metrics` for each day): the same values,
    dtypes and counts; tests/test_replay_sql.py checks it."""

    def __init__(self, backend: Backend, rules: Rules, sources: Mapping[str, Usage],
                 customer_ids: pl.DataFrame, start: dt.date, end: dt.date) -> None:
        self.backend, self.rules, self.ids = backend, rules, customer_ids.select(ID)
        dialect = backend.dialect
        # the Polars plan on no rows: kinds, dtypes, and every problem of a metric raised
        # as without engine
        empty = {n: dataclasses.replace(u, rows=u.rows.head(0)) for n, u in sources.items()}
        self.shape = compute_metrics(rules, empty, self.ids.head(0), start)
        backend.register_frame(CUSTOMERS, self.ids)
        self.tables = register_sources(backend, rules, sources)
        self.order = [n for n in rules.usage_sources if n in self.tables] + [
            n for n in self.tables if n not in rules.usage_sources]
        stop = end + dt.timedelta(days=1)
        self.partials: dict[str, str] = {}
        self.distinct: dict[str, dict[int, str]] = {}
        self.outside: dict[str, dict[str, int]] = {}
        self.carried: dict[str, str] = {}  # source -> its all-history partials, last day
        self.days: list[dt.date] = []  # the days given so far
        statements: list[str] = []
        for j, name in enumerate(self.order):
            one, table = rules.for_source(name), self.tables[name]
            if not where_ignores_as_of(one, sources[name].schema, start):
                continue  # aggregated afresh each day
            self.partials[name] = f"lc_partials_{j}"
            # in day order: a day's or a window's rows lie together (DuckDB skips the rest)
            statements.append(create_sql(self.partials[name], partials_query(
                one, table, stop, start, dialect).order_by(_col(DAY)), dialect))
            self.distinct[name] = {}
            for i, metric in enumerate(one.metrics.values()):
                if metric.agg == "n_unique" and metric.column:
                    self.distinct[name][i] = f"lc_pairs_{j}_{i}"
                    statements.append(create_sql(self.distinct[name][i], distinct_query(
                        one, table, stop, start, dialect, i).order_by(_col(DAY)), dialect))
            statements.append(create_sql("lc_outside", outside_query(table, stop), dialect))
            backend.execute(statements)
            statements = []
            row = backend.fetch("lc_outside").row(0, named=True)
            self.outside[name] = {k: int(v or 0) for k, v in row.items()}

    def metrics(self, day: dt.date) -> MetricsResult:
        """Every metric for ``day``, as `compute_metrics` gives it."""
        if self.days and day <= self.days[-1]:
            raise ValueError("days must come in increasing order")
        backend, dialect = self.backend, self.backend.dialect
        grouped = {name: f"lc_replay_source_{j}" for j, name in enumerate(self.order)}
        by_source: dict[str, dict[str, int]] = {}
        for name in self.order:
            one, table = self.rules.for_source(name), self.tables[name]
            if name in self.partials:
                history = [i for i, m in enumerate(one.metrics.values()) if not m.window_days]
                carried = f"lc_carried_{self.order.index(name)}_{len(self.days) % 2}"
                backend.execute([
                    create_sql(carried, carry_query(
                        one, history, self.carried.get(name), self.partials[name],
                        self.days[-1] if self.days else None, day), dialect),
                    create_sql(grouped[name], day_query(one, carried, self.partials[name],
                                                        self.distinct[name], day), dialect),
                    create_sql("lc_replay_counts", counts_query(
                        grouped[name], self.partials[name], CUSTOMERS,
                        table.lookup is not None, day), dialect)])
                row = backend.fetch("lc_replay_counts").row(0, named=True)
                outside = self.outside[name]
                by_source[name] = {
                    "rows": row["rows"], "unknown_customer": row["unknown_customer"],
                    "unmatched_key": row["unmatched_key"],
                    "without_timestamp": outside["without_timestamp"],
                    "after_as_of": int(row["after_as_of"] or 0) + outside["beyond"]}
            else:  # a `where` reads the as-of date: this day's rows afresh
                backend.execute([
                    create_sql(grouped[name], script.source_query(one, table, day, dialect),
                               dialect),
                    create_sql("lc_replay_counts", script.counts_query(
                        table, grouped[name], CUSTOMERS, day), dialect)])
                by_source[name] = backend.fetch("lc_replay_counts").row(0, named=True)
        query = script.metrics_query(self.rules, self.tables, CUSTOMERS, self.shape.kinds,
                                     day, dialect, grouped)
        backend.execute([create_sql("lc_replay_metrics", query, dialect)])
        values = backend.fetch("lc_replay_metrics")
        self.carried.update({name: f"lc_carried_{self.order.index(name)}_{len(self.days) % 2}"
                             for name in self.partials})
        self.days.append(day)
        return metrics_result(self.ids, values, self.shape, by_source)

