"""Per-customer metrics aggregated from the usage export.

All metrics but the distinct counts (`n_unique`) are computed in one lazy
group-by over the usage rows up to the end of the as-of day, collected with
the streaming engine and in batches of rows, so usage larger than memory
works. ``where`` and ``window_days`` become conditions inside each
aggregation, so one pass serves every metric. A distinct count takes a pass
of its own over its rows (distinct customer/value pairs), which Polars runs
in less memory. What each `agg` computes, and how, is in
`lifecycle_cli.metrics.aggregations`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import polars as pl

from ..columns import ID, TIMESTAMP
from ..errors import DataError, Problem
from ..expressions import (
    ExpressionError,
    Kind,
    compile_expression,
    kind_of,
    parse,
    parse_iso_date,
    referenced_names,
)
from ..inputs.usage import Usage
from ..rules.model import Metric, Rules
from ..suggest import did_you_mean
from .aggregations import Aggregation, ColumnUse, Rows, aggregation

ROWS = "__usage_rows"
LEFT = "__rows_left_"  # + metric name: rows left after `where` and the window
PART = "__part{index}_{key}"  # a metric's partial aggregate: the metric's place, the key


@dataclass(frozen=True)
class MetricsResult:
    """Metric values per customer (every customer, defaults filled) and usage counts: the
    sums over the sources, and each source's in ``by_source``."""

    values: pl.DataFrame  # ID + one column per metric, in rules order
    kinds: dict[str, Kind]
    usage_rows: int = 0  # rows on or before the as-of date
    unknown_customer_rows: int = 0  # of those, rows whose customer is not in the customers table
    null_timestamp_rows: int = 0  # dropped: no timestamp
    after_as_of_rows: int = 0  # ignored: after the as-of date
    unmatched_key_rows: int = 0  # of the usage rows, those whose key the lookup lacks
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> counts

    def counts(self) -> dict[str, int]:
        """This result's counts, as ``by_source`` holds them."""
        return {"rows": self.usage_rows, "unknown_customer": self.unknown_customer_rows,
                "unmatched_key": self.unmatched_key_rows,
                "without_timestamp": self.null_timestamp_rows,
                "after_as_of": self.after_as_of_rows}


def join_values(frame: pl.DataFrame, values: pl.DataFrame, key: str = ID) -> pl.DataFrame:
    """``frame`` with the columns of ``values`` (one row per ``key``), as a left join on
    ``key`` that keeps ``frame``'s order.

    When ``values`` holds ``frame``'s keys in ``frame``'s order, none NULL (the usual case:
    values computed for those customers, or kept by a run of the same export), the rows
    already match and they are put side by side: comparing the keys costs about a tenth of
    the join (0.15-0.3 s at 1M text ids)."""
    right = [c for c in values.columns if c != key]
    if (frame.height == values.height and key in frame.columns and key in values.columns
            and not set(right) & set(frame.columns)
            and frame[key].dtype == values[key].dtype and frame[key].null_count() == 0
            and frame[key].equals(values[key])):
        return pl.concat([frame, values.select(right)], how="horizontal")
    return frame.join(values, on=key, how="left", maintain_order="left")


def combine(rules: Rules, customer_ids: pl.DataFrame,
            results: Mapping[str, MetricsResult]) -> MetricsResult:
    """The metrics of each source (``results``: source name -> its metrics), as one result:
    the values of every metric in rules order, the counts of the sources read (those with
    ``by_source``), and their sums."""
    values = customer_ids.select(ID)
    kinds: dict[str, Kind] = {}
    by_source: dict[str, dict[str, int]] = {}
    for result in results.values():
        if result.values.width > 1:
            values = join_values(values, result.values)
        kinds.update(result.kinds)
        by_source.update(result.by_source)

    def total(key: str) -> int:
        return sum(counts[key] for counts in by_source.values())

    return MetricsResult(
        values=values.select(ID, *[n for n in rules.metrics if n in values.columns]),
        kinds={n: kinds[n] for n in rules.metrics if n in kinds},
        usage_rows=total("rows"), unknown_customer_rows=total("unknown_customer"),
        null_timestamp_rows=total("without_timestamp"), after_as_of_rows=total("after_as_of"),
        unmatched_key_rows=total("unmatched_key"), by_source=by_source)


Distinct = tuple[str, pl.Expr | None, str]  # metric name, row condition, column


def metric_kind(metric: Metric, usage_kinds: dict[str, Kind]) -> Kind:
    return aggregation(metric.agg).kind(usage_kinds.get(metric.column or "", Kind.NULL))


def default_kinds(rules: Rules) -> dict[str, Kind]:
    """Kinds of the metrics when there is no usage to look at: a column's kind is guessed
    from the metric's default (`timestamp`: a datetime)."""
    out = {}
    for name, m in rules.metrics.items():
        column = Kind.DATETIME if m.column == TIMESTAMP else _kind_of_value(m.default)
        out[name] = aggregation(m.agg).kind(column)
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
        parsed = value if isinstance(value, dt.date) else parse_iso_date(value)
        if parsed is not None:
            if kind == Kind.DATETIME and not isinstance(parsed, dt.datetime):
                parsed = dt.datetime.combine(parsed, dt.time())
            return parsed
    raise ValueError(f"the default {value!r} is not {kind.value}")


def _default_problem(rules: Rules, name: str, metric: Metric, kind: Kind) -> Problem | None:
    try:
        default_value(metric, kind)
    except ValueError as err:
        return rules.problem(f"{err}: `{metric.agg}` of this column gives {kind.value}",
                             "metrics", name, "default", rule_id=name)
    return None


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


@dataclass
class Plan:
    """How to aggregate the usage in batches of rows.

    Each batch is grouped by customer with ``partials``; batches are merged
    with ``combines`` (sums of counts and sums, min of min, any of any, the
    earliest of the batches' firsts...), and ``finals`` turn the merged
    columns into the metrics. Grouping all the rows at once would need memory
    that grows with the number of rows; batches bound it.
    """

    partials: list[pl.Expr] = field(default_factory=list)
    combines: list[pl.Expr] = field(default_factory=list)
    finals: list[pl.Expr] = field(default_factory=list)
    distinct: list[Distinct] = field(default_factory=list)
    kinds: dict[str, Kind] = field(default_factory=dict)
    planned: int = 0  # metrics with partials so far

    def add(self, partial: pl.Expr, name: str, combine: str) -> None:
        """A partial aggregate kept as column ``name`` and merged with ``combine``."""
        self.partials.append(partial.alias(name))
        self.combines.append(getattr(pl.col(name), combine)().alias(name))

    def add_metric(self, name: str, agg: Aggregation, rows: Rows) -> None:
        """Metric ``name``: ``agg`` over ``rows``, as partials, merges and a final value, or
        as a distinct count in a pass of its own."""
        if agg.distinct_pairs:
            # its own pass: filter, distinct (customer, value) pairs, count per customer.
            # The filter is pushed into the scan, and the pass needs far less memory
            # than n_unique inside the shared group-by.
            assert rows.column is not None
            self.distinct.append((name, rows.cond, rows.column))
            return
        assert agg.partials is not None and agg.final is not None
        self.planned += 1  # numbers the metric's partial columns (names may hold anything)
        index = self.planned

        def part(key: str) -> pl.Expr:
            return pl.col(PART.format(index=index, key=key))

        for key, partial in agg.partials(rows).items():
            self.partials.append(partial.expr.alias(PART.format(index=index, key=key)))
            self.combines.append(partial.merged(part, key).alias(PART.format(index=index,
                                                                              key=key)))
        self.finals.append(agg.final(part).alias(name))


def build_plan(rules: Rules, schema: dict[str, pl.DataType], as_of: dt.date,
               source: str = "the usage export", *, count_rows: bool = True) -> Plan:
    """The aggregation plan for every metric (over one source: its ``schema``, named
    ``source`` in messages); raise DataError listing bad metrics. ``count_rows``: the rows
    of each group are counted too (ROWS)."""
    usage_kinds = {name: kind_of(dtype) for name, dtype in schema.items()}
    problems: list[Problem] = []
    plan = Plan()
    if count_rows:
        plan.add(pl.len(), ROWS, "sum")
        plan.finals.append(pl.col(ROWS))
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
            problems.append(
                rules.problem(
                    f"{source} has no column '{m.column}'",
                    "metrics",
                    name,
                    "column",
                    rule_id=name,
                    hint=did_you_mean(m.column, list(usage_kinds))
                    or "its columns: " + ", ".join(usage_kinds),
                )
            )
            continue
        agg = aggregation(m.agg)
        kind = metric_kind(m, usage_kinds)
        column = m.column or ""
        if agg.column is ColumnUse.NUMERIC and kind_of(schema[column]) not in (
                Kind.NUMBER, Kind.BOOL):
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
        if m.default is not None:
            default_problem = _default_problem(rules, name, m, kind)
            if default_problem:
                problems.append(default_problem)
                continue
            # "no rows" means none left after `where` and the window: count them
            plan.add(pl.len() if cond is None else cond.sum(), LEFT + name, "sum")
            plan.finals.append(pl.col(LEFT + name))
        plan.kinds[name] = kind
        plan.add_metric(name, agg, Rows(m.column, cond))
    if problems:
        raise DataError(problems)
    return plan


# Rows grouped at once. Polars' streaming group-by needs memory in proportion to the rows
# it has seen when there are many groups (~1 GiB for 20M rows, 1M customers); batches
# bound it for a few percent of time. Measured in bench/README.md.
BATCH_ROWS = 20_000_000
MERGE_EVERY = 4  # batches' partials kept before they are merged

# Text customer ids are grouped by a 64-bit hash of the id, computed once per row: grouping
# by an integer is twice as fast as by text (bench/README.md). The customers' hashes must
# be distinct, and a second hash proves each group holds one id: the group's sum (mod 2^64)
# of the second hash equals its rows times the customer's. Where either fails, the rows
# are grouped by the text itself.
KEY = "__key"
CHECK = "__key_check"
SEED, CHECK_SEED = 0x6C69666563796C65, 0x73746167657321


@dataclass(frozen=True)
class Grouping:
    """What the usage rows are grouped by: the column ``by`` as it is, or (``hashed``)
    KEY, the hash of the text column ``by`` (the customer id)."""

    by: str
    hashed: bool = False

    @property
    def column(self) -> str:
        return KEY if self.hashed else self.by

    def keyed(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.with_columns(id_key(pl.col(self.by)).alias(KEY)) if self.hashed else rows


def id_key(ids: pl.Expr) -> pl.Expr:
    """The KEY of text customer ids (a function, so that a test can make keys collide)."""
    return ids.hash(SEED)


def by_window(rules: Rules) -> dict[int, Rules]:
    """The metrics of ``rules`` grouped by `window_days` (0: no window), the window taken
    off: each group is one pass over its own rows, with the window as the pass's filter."""
    windows = sorted({m.window_days or 0 for m in rules.metrics.values()} | {0})
    return {w: rules.model_copy(update={"metrics": {
        n: m.model_copy(update={"window_days": None})
        for n, m in rules.metrics.items() if (m.window_days or 0) == w}}) for w in windows}


def aggregate(frame: pl.LazyFrame, plan: Plan, cond: pl.Expr, total_rows: int,
              batch_rows: int, grouping: Grouping) -> pl.DataFrame:
    """Group the rows of ``frame`` (``total_rows`` rows) that meet ``cond`` with ``plan``'s
    partial aggregates, ``batch_rows`` rows at a time; the partials of the batches merged,
    not yet turned into the metrics (``plan.finals``). ``cond`` reads the scanned columns
    only, so that Polars pushes it into the scan (Parquet row groups outside it are
    skipped)."""
    by = grouping.column
    return batched(frame, total_rows, batch_rows,
                   lambda rows: grouping.keyed(rows.filter(cond)).group_by(by).agg(plan.partials),
                   lambda frames: pl.concat(frames).group_by(by).agg(plan.combines))


def batched(frame: pl.LazyFrame, total_rows: int, batch_rows: int,
            query: Callable[[pl.LazyFrame], pl.LazyFrame],
            merge: Callable[[list[pl.DataFrame]], pl.DataFrame]) -> pl.DataFrame:
    """``query`` over each batch of ``batch_rows`` rows of ``frame`` (``total_rows`` rows),
    the results merged with ``merge`` every MERGE_EVERY batches and at the end."""
    if total_rows <= batch_rows:
        slices = [frame]
    else:
        slices = [frame.slice(offset, batch_rows) for offset in range(0, total_rows, batch_rows)]
    parts: list[pl.DataFrame] = []
    for rows in slices:
        parts.append(query(rows).collect(engine="streaming"))
        # partials hold up to one row per group and batch: merge now and then
        if len(parts) == MERGE_EVERY:
            parts = [merge(parts)]
    return parts[0] if len(parts) == 1 else merge(parts)


def compute_metrics(
    rules: Rules, usage: Usage | Mapping[str, Usage] | None, customer_ids: pl.DataFrame,
    as_of: dt.date, *, batch_rows: int | None = None,
) -> MetricsResult:
    """Aggregate every metric for every customer in ``customer_ids`` (a frame with ID).

    ``usage``: the sources by name (or one source, or None). Each source is one pass
    over its rows for its own metrics; a metric whose source is not given takes its
    default.
    """
    sources = {usage.name: usage} if isinstance(usage, Usage) else dict(usage or {})
    if not rules.metrics and not sources:
        return MetricsResult(values=customer_ids.select(ID), kinds={})
    results = {}
    problems: list[Problem] = []  # every source's, together
    for name in dict.fromkeys([*rules.usage_sources, *sources]):
        one = rules.for_source(name)
        if name in sources:
            try:
                results[name] = source_metrics(one, sources[name], customer_ids, as_of,
                                               batch_rows=batch_rows)
            except DataError as error:
                problems += error.problems
        elif one.metrics:
            kinds = default_kinds(one)
            results[name] = MetricsResult(values=finish(one, customer_ids.select(ID), kinds),
                                          kinds=kinds)
    if problems:
        raise DataError(problems)
    return combine(rules, customer_ids, results)


VALUE = "__distinct_value"
PAIR = "__distinct_pair"  # a 128-bit (value, key) pair
MERGE_PARTS = 8  # distinct pairs are merged an eighth of the groups at a time


def _low_bits(pair: pl.Expr) -> pl.Expr:
    """The low 64 bits of 128-bit integers: the key of a PAIR."""
    return pair.cast(pl.UInt64, wrap_numerical=True)


def _unique(pairs: pl.DataFrame, by: str) -> pl.DataFrame:
    """The distinct rows of ``pairs``, found MERGE_PARTS slices of ``by`` at a time (a
    slice's rows are never equal to another's): a fraction of the memory of one `unique`."""
    dtype = pairs.schema[by]
    part = (_low_bits(pl.col(by)) if dtype == pl.UInt128 else pl.col(by) if dtype.is_integer()
            else pl.col(by).hash()) % MERGE_PARTS
    return pl.concat([pairs.filter(part == i).unique() for i in range(MERGE_PARTS)])


def _chosen_rows(usage: Usage) -> Usage:
    """The source with only the rows of its chosen customers (``usage.only``: explain), read
    once into memory: the filter on the id goes into the scan, and every pass then reads
    those few rows."""
    assert usage.only is not None

    def among(column: str, values: pl.Series) -> pl.Expr:
        # one value: an equality, which the Parquet reader checks 20% faster than is_in
        if values.len() == 1 and values.null_count() == 0:
            return pl.col(column) == pl.lit(values[0], dtype=values.dtype)
        return pl.col(column).is_in(values.implode())

    if usage.lookup is None:
        rows = usage.rows.filter(among(ID, usage.only))
    else:
        table, key = usage.lookup.table, usage.lookup.key
        rows = usage.rows.filter(among(key, table.filter(pl.col(ID).is_in(
            usage.only.implode()))[key]))
    return replace(usage, rows=rows.collect(engine="streaming").lazy(), only=None)


def _hashed_ids(customer_ids: pl.DataFrame) -> pl.DataFrame | None:
    """The customers' ids with their KEY and CHECK hashes, when the ids are text and their
    KEYs are distinct (else None: group by the text)."""
    if customer_ids.schema[ID] != pl.String:
        return None
    ids = customer_ids.select(ID, id_key(pl.col(ID)).alias(KEY),
                              pl.col(ID).hash(CHECK_SEED).alias(CHECK))
    return ids if ids[KEY].n_unique() == ids.height else None


def _grouped(rules: Rules, usage: Usage, as_of: dt.date, total: int, batch_rows: int,
             grouping: Grouping) -> pl.DataFrame:
    """One row per group of usage rows up to the as-of day (grouping.column): ROWS, the
    metrics, and CHECK when hashed. One pass per window length, each filtered in the scan
    to its window; a distinct count is a pass over its (group, value) pairs in its window."""
    end = _day_start(as_of + dt.timedelta(days=1))
    ts = pl.col(TIMESTAMP)
    lookup = usage.lookup if grouping.by != ID else None  # the key's partials go through it
    rows = usage.rows if lookup is not None else usage.frame
    by = grouping.column
    out: pl.DataFrame | None = None
    for window, group in by_window(rules).items():
        cond = ts < pl.lit(end, dtype=pl.Datetime("us"))
        if window:
            cond = cond & (ts >= pl.lit(_day_start(as_of - dt.timedelta(days=window - 1)),
                                        dtype=pl.Datetime("us")))
        plan = build_plan(group, usage.schema, as_of, usage.label(), count_rows=not window)
        if window and not plan.partials and not plan.distinct:
            continue
        if grouping.hashed and not window:
            plan.add(pl.col(ID).hash(CHECK_SEED).sum(), CHECK, "sum")
            plan.finals.append(pl.col(CHECK))
        part: pl.DataFrame | None = None
        if plan.partials:
            part = aggregate(rows, plan, cond, total, batch_rows, grouping)
            if lookup is not None:  # a key the lookup lacks gives the NULL customer
                part = part.join(lookup.table, on=by, how="left").group_by(ID).agg(
                    plan.combines)
            part = part.select(pl.col(ID if lookup is not None else by), *plan.finals)
        for name, where, column in plan.distinct:
            # the distinct (group, value) pairs of each batch, then of all, merged a part of
            # the groups at a time: memory in proportion to the pairs, not to the rows. Text
            # values are hashed (64 bits): two of one customer's values would count as one
            # only if their hashes were equal (odds of 1 in 10^11 for a million customers
            # with 10 values each); at 2M / 200M this halves the peak memory.
            dtype = usage.schema[column]
            value = (pl.col(column).hash(SEED) if dtype == pl.String
                     else pl.col(column)).alias(VALUE)
            keep = cond & pl.col(column).is_not_null()
            if where is not None:
                keep = keep & where
            # a hashed key and a 64-bit value: both in one 128-bit integer, the value above
            # the key, which Polars makes distinct 40% faster than the two columns
            packed = grouping.hashed and (dtype == pl.String or dtype.is_integer())
            if packed:
                if dtype not in (pl.String, pl.UInt64):  # any other integer, as 64 bits
                    value = pl.col(column).cast(pl.Int64).cast(pl.UInt64, wrap_numerical=True)
                columns = [(value.cast(pl.UInt128) * 2**64 + pl.col(KEY).cast(pl.UInt128))
                           .alias(PAIR)]
            else:
                columns = [pl.col(by), value]

            def distinct(batch: pl.LazyFrame, keep: pl.Expr = keep,
                         columns: list[pl.Expr] = columns) -> pl.LazyFrame:
                return grouping.keyed(batch.filter(keep)).select(columns).unique()

            def merge(frames: list[pl.DataFrame], split: str = PAIR if packed else by
                      ) -> pl.DataFrame:
                return _unique(pl.concat(frames), split)

            pairs = batched(rows, total, batch_rows, distinct, merge).lazy()
            if packed:  # the key is the pair's low 64 bits
                pairs = pairs.select(_low_bits(pl.col(PAIR)).alias(KEY))
            if lookup is not None:  # distinct (key, value) pairs first, then their customer
                pairs = pairs.join(lookup.table.lazy(), on=by).select(ID, VALUE).unique()
            target = ID if lookup is not None else by
            counted = (pairs.group_by(target)
                       .agg(pl.len().cast(pl.Int64).alias(name)).collect(engine="streaming"))
            part = counted if part is None else part.join(counted, on=target, how="full",
                                                          coalesce=True)
        assert part is not None
        # every group with a row in a window or a pair has a row up to the as-of day
        out = part if out is None else out.join(part, on=part.columns[0], how="left",
                                                coalesce=True)
    assert out is not None
    return out


def source_metrics(
    rules: Rules, usage: Usage, customer_ids: pl.DataFrame, as_of: dt.date,
    *, batch_rows: int | None = None,
) -> MetricsResult:
    """The metrics of ``rules`` (those of one source) over the source ``usage``."""
    plan = build_plan(rules, usage.schema, as_of, usage.label())  # every metric checked
    if usage.only is not None:
        usage = _chosen_rows(usage)
    end = pl.lit(_day_start(as_of + dt.timedelta(days=1)), dtype=pl.Datetime("us"))
    # Through a lookup, the rows are grouped by its key, and only the key's partial
    # aggregates (one row per key) are joined with the lookup and merged per customer, as
    # batches are: far cheaper than joining every row. Unless a metric reads the customer id.
    lookup = usage.lookup if ID not in metric_columns(rules) else None
    hashed = _hashed_ids(customer_ids) if usage.lookup is None else None
    grouping = Grouping(ID if lookup is None else lookup.key, hashed=hashed is not None)
    ts = pl.col(TIMESTAMP)
    try:
        # Parquet states its rows; rows outside (no timestamp, after the as-of day) are
        # counted where the row groups' statistics say they may be
        total = int(usage.rows.select(pl.len()).collect().item())
        counts = usage.rows.filter(ts.is_null() | (ts >= end)).select(
            ts.is_null().sum().alias("nulls"), (ts >= end).sum().alias("after"),
        ).collect(engine="streaming")
        batch_rows = batch_rows or BATCH_ROWS
        grouped = _grouped(rules, usage, as_of, total, batch_rows, grouping)
        if hashed is not None:
            grouped = hashed.select(ID, KEY, pl.col(CHECK).alias("__id_check")).join(
                grouped, on=KEY, how="right", coalesce=True)
            collided = grouped.filter(pl.col(ID).is_not_null() & (
                pl.col(CHECK) != pl.col(ROWS).cast(pl.UInt64) * pl.col("__id_check")))
            if collided.height:  # two ids share a hash: group by the text instead
                grouped = _grouped(rules, usage, as_of, total, batch_rows, Grouping(ID))
            else:
                grouped = grouped.drop(KEY, CHECK, "__id_check")
    except pl.exceptions.PolarsError as err:
        message = str(err).strip().splitlines()[0]
        raise DataError(
            Problem(
                f"cannot compute the metrics from {usage.label()}: {message}",
                file=str(usage.paths[0]),
            )
        ) from None
    ids = customer_ids.select(ID)
    known = ids.join(grouped, on=ID, how="left", coalesce=True)
    unknown = grouped.join(ids, on=ID, how="anti")
    unmatched = 0
    if usage.lookup is not None:  # rows whose key the lookup lacks have no customer id
        unmatched = int(grouped.filter(pl.col(ID).is_null())[ROWS].sum() or 0)
    result = MetricsResult(
        values=finish(rules, known, plan.kinds),
        kinds=plan.kinds,
        usage_rows=int(grouped[ROWS].sum() or 0),
        unknown_customer_rows=int(unknown[ROWS].sum() or 0) - unmatched,
        null_timestamp_rows=int(counts["nulls"][0] or 0),
        after_as_of_rows=int(counts["after"][0] or 0),
        unmatched_key_rows=unmatched,
    )
    return replace(result, by_source={usage.name: result.counts()})


def finish(rules: Rules, values: pl.DataFrame, kinds: dict[str, Kind]) -> pl.DataFrame:
    """One column per metric, in rules order; customers with no rows left get the
    aggregation's zero (0 for count, sum, n_unique; false for any; else NULL), or the
    metric's `default:`."""
    columns = [pl.col(ID)]
    dtypes: dict[Kind, pl.DataType] = {Kind.NUMBER: pl.Float64(), Kind.BOOL: pl.Boolean(),
                                       Kind.DATETIME: pl.Datetime("us"), Kind.DATE: pl.Date(),
                                       Kind.STRING: pl.String()}
    for name, m in rules.metrics.items():
        agg = aggregation(m.agg)
        kind = kinds.get(name, Kind.NULL)
        if name in values.columns:
            value = pl.col(name)
        else:
            value = pl.lit(None, dtype=agg.dtype or dtypes.get(kind, pl.Null()))
        if agg.zero is not None:
            value = value.fill_null(agg.zero)
        default = default_value(m, kind)
        if default is not None:
            left = pl.col(LEFT + name) if LEFT + name in values.columns else pl.lit(0)
            value = pl.when(left.fill_null(0) == 0).then(pl.lit(default)).otherwise(value)
        columns.append(value.alias(name))
    return values.select(columns)


def stored_metrics(rules: Rules, stored: pl.DataFrame, customer_ids: pl.DataFrame
                   ) -> MetricsResult:
    """The metrics a state kept for a day (``customer_id`` as text, a column per metric, every
    metric of ``rules`` among them), for the customers of ``customer_ids`` (a frame with ID);
    a customer the day did not have gets what a customer with no usage rows gets."""
    kinds = {name: kind_of(stored.schema[name]) for name in rules.metrics}
    key, found = "__stored_key", "__stored_found"
    ids = customer_ids.select(ID)
    kept = join_values(
        ids.with_columns(pl.col(ID).cast(pl.String).alias(key)),
        stored.select(pl.col("customer_id").alias(key), *rules.metrics)
        .with_columns(pl.lit(True).alias(found)),
        key)
    fallback = finish(rules, ids, kinds).drop(ID)
    values = pl.concat([kept, fallback.rename(lambda c: f"__default_{c}")], how="horizontal")
    return MetricsResult(
        values=values.select(ID, *[
            pl.when(pl.col(found).fill_null(False)).then(pl.col(n))
            .otherwise(pl.col(f"__default_{n}")).alias(n) for n in rules.metrics]),
        kinds=kinds,
    )


# -- many consecutive days at once (backfill) ----------------------------------------------

def metric_columns(rules: Rules) -> list[str]:
    """The usage columns that the metrics read (their `column` and their `where`)."""
    out: list[str] = []
    for m in rules.metrics.values():
        if m.column:
            out.append(m.column)
        if m.where:
            try:
                out += referenced_names(parse(m.where))
            except ExpressionError:
                continue
    return list(dict.fromkeys(out))
