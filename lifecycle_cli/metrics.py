"""Per-customer metrics aggregated from the usage export.

All metrics are computed in one lazy group-by over the usage rows up to the
end of the as-of day, collected with the streaming engine so usage larger
than memory works. ``where`` and ``window_days`` become conditions inside
each aggregation, so one pass serves every metric.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from .errors import DataError, Problem
from .expressions import ExpressionError, Kind, compile_expression, kind_of
from .inputs import ID, TIMESTAMP, Usage
from .rules import Metric, Rules

ROWS = "__usage_rows"
LEFT = "__rows_left_"  # + metric name: rows left after `where` and the window
SEQ = "__usage_seq"
_ZERO_DEFAULT = {"count": 0, "sum": 0, "n_unique": 0, "any": False}


@dataclass(frozen=True)
class MetricsResult:
    """Metric values per customer (every customer, defaults filled) and usage counts."""

    values: pl.DataFrame  # ID + one column per metric, in rules order
    kinds: dict[str, Kind]
    usage_rows: int = 0  # rows on or before the as-of date
    unknown_customer_rows: int = 0  # of those, rows whose customer is not in the customers table
    null_timestamp_rows: int = 0  # dropped: no timestamp
    after_as_of_rows: int = 0  # ignored: after the as-of date


Distinct = tuple[str, pl.Expr | None, str]  # metric name, row condition, column


def metric_kind(metric: Metric, usage_kinds: dict[str, Kind]) -> Kind:
    if metric.agg in ("count", "n_unique"):
        return Kind.NUMBER
    if metric.agg == "any":
        return Kind.BOOL
    if metric.agg in ("sum", "mean"):
        return Kind.NUMBER
    return usage_kinds.get(metric.column or "", Kind.NULL)


def default_kinds(rules: Rules) -> dict[str, Kind]:
    """Kinds of the metrics when there is no usage to look at (from their defaults)."""
    out = {}
    for name, m in rules.metrics.items():
        if m.agg in ("count", "n_unique", "sum", "mean"):
            out[name] = Kind.NUMBER
        elif m.agg == "any":
            out[name] = Kind.BOOL
        elif m.column == TIMESTAMP:
            out[name] = Kind.DATETIME
        else:
            out[name] = _kind_of_value(m.default)
    return out


def _kind_of_value(value: object) -> Kind:
    if value is None:
        return Kind.NULL
    if isinstance(value, bool):
        return Kind.BOOL
    if isinstance(value, int | float):
        return Kind.NUMBER
    return Kind.STRING


def default_value(metric: Metric, kind: Kind) -> object:
    """The metric's `default:` as a value of the metric's kind; ValueError if it is not one."""
    value = metric.default
    if value is None or kind == Kind.NULL:
        return value
    if kind == Kind.NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if kind == Kind.BOOL and isinstance(value, bool):
        return value
    if kind == Kind.STRING and isinstance(value, str):
        return value
    if kind in (Kind.DATE, Kind.DATETIME) and isinstance(value, str | dt.date):
        parsed = value if isinstance(value, dt.date) else _parse_iso(value)
        if parsed is not None:
            if kind == Kind.DATETIME and not isinstance(parsed, dt.datetime):
                parsed = dt.datetime.combine(parsed, dt.time())
            return parsed
    raise ValueError(f"the default {value!r} is not {kind.value}")


def _parse_iso(text: str) -> dt.date | None:
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    return None


def _default_problem(rules: Rules, name: str, metric: Metric, kind: Kind) -> Problem | None:
    try:
        default_value(metric, kind)
    except ValueError as err:
        return rules.problem(f"{err}: `{metric.agg}` of this column gives {kind.value}",
                             "metrics", name, "default", rule_id=name)
    return None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def build_aggregations(
    rules: Rules,
    schema: dict[str, pl.DataType],
    as_of: dt.date,
) -> tuple[list[pl.Expr], list[Distinct], dict[str, Kind], bool]:
    """One aggregation expression per metric; raise DataError for bad metrics.

    Returns the expressions for the shared group-by, the `n_unique` metrics
    (computed in passes of their own), the metric kinds, and whether a row
    sequence column is needed (for `first`/`last` ties).
    """
    usage_kinds = {name: kind_of(dtype) for name, dtype in schema.items()}
    problems: list[Problem] = []
    aggs: list[pl.Expr] = []
    distinct: list[Distinct] = []
    kinds: dict[str, Kind] = {}
    needs_seq = False
    for name, m in rules.metrics.items():
        conds: list[pl.Expr] = []
        if m.where:
            try:
                compiled = compile_expression(m.where, usage_kinds, as_of=as_of, condition=True)
            except ExpressionError as err:
                problems.append(
                    rules.problem(
                        err.message, "metrics", name, "where", rule_id=name, hint=err.hint
                    )
                )
                continue
            conds.append(compiled.as_condition())
        if m.window_days:
            start = _day_start(as_of - dt.timedelta(days=m.window_days - 1))
            conds.append(pl.col(TIMESTAMP) >= pl.lit(start, dtype=pl.Datetime("us")))
        cond = None
        for c in conds:
            cond = c if cond is None else cond & c
        if m.column is not None and m.column not in usage_kinds:
            from .rules import did_you_mean

            problems.append(
                rules.problem(
                    f"the usage export has no column '{m.column}'",
                    "metrics",
                    name,
                    "column",
                    rule_id=name,
                    hint=did_you_mean(m.column, list(usage_kinds))
                    or "usage columns: " + ", ".join(usage_kinds),
                )
            )
            continue
        kind = metric_kind(m, usage_kinds)
        column = m.column or ""
        if m.agg in ("sum", "mean") and kind_of(schema[column]) not in (Kind.NUMBER, Kind.BOOL):
            problems.append(
                rules.problem(
                    f"`{m.agg}` needs a numeric column, but '{m.column}' holds "
                    f"{kind_of(schema[column]).value}",
                    "metrics",
                    name,
                    "column",
                    rule_id=name,
                    hint="check the export for text such as 'N/A' in that column",
                )
            )
            continue
        kinds[name] = kind
        col = pl.col(column)
        if m.default is not None:
            default_problem = _default_problem(rules, name, m, kind)
            if default_problem:
                problems.append(default_problem)
                continue
            # "no rows" means none left after `where` and the window: count them
            left = pl.len() if cond is None else cond.sum()
            aggs.append(left.alias(LEFT + name))
        if m.agg == "count":
            agg = pl.len() if cond is None else cond.sum()
            agg = agg.cast(pl.Int64)
        elif m.agg == "any":
            agg = pl.len() > 0 if cond is None else cond.any()
        elif m.agg == "n_unique":
            # its own pass: filter, distinct (customer, value) pairs, count per customer.
            # The filter is pushed into the scan, and the pass needs far less memory
            # than n_unique inside the shared group-by.
            distinct.append((name, cond, column))
            continue
        elif m.agg in ("sum", "mean", "min", "max"):
            values = col if cond is None else pl.when(cond).then(col)
            agg = getattr(values, m.agg)()
        else:  # first / last, by timestamp, ties by input order
            needs_seq = True
            keys = [pl.col(TIMESTAMP), pl.col(SEQ)]
            values = col
            if cond is not None:
                values = values.filter(cond)
                keys = [k.filter(cond) for k in keys]
            ordered = values.sort_by(keys, nulls_last=True)
            agg = ordered.first() if m.agg == "first" else ordered.last()
        aggs.append(agg.alias(name))
    if problems:
        raise DataError(problems)
    return aggs, distinct, kinds, needs_seq


def compute_metrics(
    rules: Rules, usage: Usage | None, customer_ids: pl.DataFrame, as_of: dt.date
) -> MetricsResult:
    """Aggregate every metric for every customer in ``customer_ids`` (a frame with ID)."""
    if not rules.metrics and usage is None:
        return MetricsResult(values=customer_ids.select(ID), kinds={})
    if usage is None:
        kinds = default_kinds(rules)
        return MetricsResult(values=_finish(rules, customer_ids.select(ID), kinds), kinds=kinds)

    aggs, distinct, kinds, needs_seq = build_aggregations(rules, usage.schema, as_of)
    end = pl.lit(_day_start(as_of + dt.timedelta(days=1)), dtype=pl.Datetime("us"))
    frame = usage.frame
    if needs_seq:
        frame = frame.with_row_index(SEQ)
    in_range = frame.filter(pl.col(TIMESTAMP) < end)
    counts_lf = usage.frame.select(
        pl.col(TIMESTAMP).is_null().sum().alias("nulls"),
        (pl.col(TIMESTAMP) >= end).sum().alias("after"),
    )
    # One pass at a time keeps the peak memory to that of the largest pass.
    try:
        grouped = in_range.group_by(ID).agg(pl.len().alias(ROWS), *aggs).collect(
            engine="streaming")
        for name, cond, column in distinct:
            rows = in_range if cond is None else in_range.filter(cond)
            counted = (rows.select(ID, column).drop_nulls().unique().group_by(ID)
                       .agg(pl.len().cast(pl.Int64).alias(name)).collect(engine="streaming"))
            grouped = grouped.join(counted, on=ID, how="left", coalesce=True)
        counts = counts_lf.collect(engine="streaming")
    except pl.exceptions.PolarsError as err:
        message = str(err).strip().splitlines()[0]
        raise DataError(
            Problem(
                f"cannot compute the metrics from the usage export: {message}",
                file=str(usage.paths[0]),
            )
        ) from None
    ids = customer_ids.select(ID)
    known = ids.join(grouped, on=ID, how="left", coalesce=True)
    unknown = grouped.join(ids, on=ID, how="anti")
    values = _finish(rules, known, kinds)
    return MetricsResult(
        values=values,
        kinds=kinds,
        usage_rows=int(grouped[ROWS].sum() or 0),
        unknown_customer_rows=int(unknown[ROWS].sum() or 0),
        null_timestamp_rows=int(counts["nulls"][0] or 0),
        after_as_of_rows=int(counts["after"][0] or 0),
    )


def _finish(rules: Rules, values: pl.DataFrame, kinds: dict[str, Kind]) -> pl.DataFrame:
    """One column per metric, in rules order; customers with no rows left get 0 (count,
    sum, n_unique), false (any) or NULL, or the metric's `default:`."""
    columns = [pl.col(ID)]
    dtypes: dict[Kind, pl.DataType] = {Kind.NUMBER: pl.Float64(), Kind.BOOL: pl.Boolean(),
                                       Kind.DATETIME: pl.Datetime("us"), Kind.DATE: pl.Date(),
                                       Kind.STRING: pl.String()}
    for name, m in rules.metrics.items():
        kind = kinds.get(name, Kind.NULL)
        if name in values.columns:
            value = pl.col(name)
        else:
            dtype = (pl.Int64() if m.agg in ("count", "n_unique")
                     else dtypes.get(kind, pl.Null()))
            value = pl.lit(None, dtype=dtype)
        if m.agg in _ZERO_DEFAULT:
            value = value.fill_null(_ZERO_DEFAULT[m.agg])
        default = default_value(m, kind)
        if default is not None:
            left = pl.col(LEFT + name) if LEFT + name in values.columns else pl.lit(0)
            value = pl.when(left.fill_null(0) == 0).then(pl.lit(default)).otherwise(value)
        columns.append(value.alias(name))
    return values.select(columns)
