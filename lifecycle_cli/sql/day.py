"""A day's heavy part on an SQL engine: the metrics and the decision, as the Polars path
gives them (`metrics.compute.MetricsResult`, `engine.decide.EngineResult`: the same
schemas, dtypes and row order), so everything after them stays in Polars.

The engine returns each move's rule (its place in the file) and hop; the ``reason``
text and ``days_in_from_stage`` are made here, in Polars, from the customer's values as
they were at that hop (`engine.compile.CompiledRules.reason_for`): the reason format
lives in one place, whichever engine ran.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

import polars as pl
from sqlglot import exp

from ..columns import (
    DAYS_IN_STAGE,
    ENTERED,
    ID,
    INITIAL_RULE,
    PREVIOUS_STAGE,
    ROW,
    STAGE,
    TIMESTAMP,
    TRANSITION_SCHEMA,
)
from ..engine.builtins import with_builtins
from ..engine.compile import CompiledRules
from ..engine.decide import EngineResult
from ..expressions import kind_of
from ..inputs.formats import PARQUET, format_of
from ..inputs.usage import Usage
from ..metrics.compute import MetricsResult, compute_metrics, metric_columns
from ..rules.model import Rules
from . import script
from .backend import Backend

CUSTOMERS = "lc_customers"
DECIDED = script.DECIDED


def usage_table(name: str) -> str:
    return f"lc_usage_{name}"


def lookup_table(name: str) -> str:
    return f"lc_lookup_{name}"


def used_columns(rules: Rules, usage: Usage) -> list[str]:
    """The columns of a source's rows that its metrics read: the customer id (or the
    lookup's key), the timestamp, each metric's `column` and the names its `where` reads."""
    key = usage.lookup.key if usage.lookup is not None else ID
    wanted = [key, TIMESTAMP, *metric_columns(rules)]
    rows = usage.rows.collect_schema()
    return [c for c in dict.fromkeys(wanted) if c in rows]


def parquet_columns(rules: Rules, usage: Usage, columns: list[str], dialect: str
                    ) -> dict[str, str] | None:
    """For a source of Parquet files that an engine can read itself: each used column (the
    rules' name) as SQL over the files' own columns, with the renames and the casts the
    Polars scan makes (`inputs.usage.scan_usage`); None when a column needs more (text
    timestamps to parse, a lookup key to clean): then the rows are streamed from Polars."""
    if not usage.paths or any(format_of(p) is not PARQUET for p in usage.paths) \
            or usage.only is not None:
        return None
    try:
        files = pl.scan_parquet([str(p) for p in usage.paths]).collect_schema()
    except (pl.exceptions.PolarsError, OSError):
        return None
    target = usage.rows.collect_schema()
    out: dict[str, str] = {}
    for name in columns:
        external = rules.source_column(usage.name, name)
        have, want = files.get(external), target.get(name)
        if have is None or want is None:
            return None
        value: exp.Expression = exp.column(exp.to_identifier(external, quoted=True))
        if have == want:
            pass
        elif name == TIMESTAMP and want == pl.Datetime("us") and (
                have == pl.Date or isinstance(have, pl.Datetime)):
            # a zoned timestamp becomes the session's (the rules') local time, as in Polars
            value = exp.cast(value, exp.DataType.build("TIMESTAMP"))
        elif name == ID and usage.lookup is None and want in (pl.String, pl.Int64):
            value = exp.TryCast(this=value, to=exp.DataType.build(
                "VARCHAR" if want == pl.String else "BIGINT"), safe=True)
        else:
            return None
        out[name] = value.sql(dialect=dialect)
    return out


def compute(backend: Backend, rules: Rules, sources: Mapping[str, Usage],
            customer_ids: pl.DataFrame, as_of: dt.date) -> MetricsResult:
    """`metrics.compute.compute_metrics` on the engine: the same values and counts."""
    # the Polars plan on no rows: the metrics' kinds and dtypes, and every problem of a
    # metric (a `where` on a column the source lacks...) reported exactly as without engine
    empty = {name: dataclasses.replace(u, rows=u.rows.head(0)) for name, u in sources.items()}
    shape = compute_metrics(rules, empty, customer_ids.head(0), as_of)
    if not rules.metrics and not sources:
        return MetricsResult(values=customer_ids.select(ID), kinds={})
    backend.register_frame(CUSTOMERS, customer_ids.select(ID))
    tables = register_sources(backend, rules, sources)
    dialect = backend.dialect
    grouped = {name: f"lc_source_{i}" for i, name in enumerate(tables)}
    backend.execute([create_sql(grouped[name], script.source_query(
        rules.for_source(name), source, as_of, dialect), dialect)
        for name, source in tables.items()])
    query = script.metrics_query(rules, tables, CUSTOMERS, shape.kinds, as_of, dialect,
                                 grouped)
    backend.execute([create_sql("lc_metrics", query, dialect)])
    values = backend.fetch("lc_metrics")
    by_source: dict[str, dict[str, int]] = {}
    for name, source in tables.items():
        backend.execute([create_sql("lc_counts", script.counts_query(
            source, grouped[name], CUSTOMERS, as_of), dialect)])
        row = backend.fetch("lc_counts").row(0, named=True)
        by_source[name] = {key: int(value or 0) for key, value in row.items()}
    return metrics_result(customer_ids, values, shape, by_source)


def register_sources(backend: Backend, rules: Rules, sources: Mapping[str, Usage]
                     ) -> dict[str, script.SourceTable]:
    """Each usage source (and its lookup) as a table of the engine, with only the columns
    its metrics read (Parquet read by the engine itself where it can)."""
    tables: dict[str, script.SourceTable] = {}
    for name, usage in sources.items():
        if usage.lookup is not None:
            backend.register_frame(lookup_table(name), usage.lookup.table)
        columns = used_columns(rules.for_source(name), usage)
        native = parquet_columns(rules, usage, columns, backend.dialect)
        if native is not None and hasattr(backend, "register_parquet"):
            backend.register_parquet(usage_table(name), [str(p) for p in usage.paths], native)
        else:
            used = usage.rows.select(columns)
            backend.register_usage(usage_table(name), dataclasses.replace(usage, rows=used))
        kinds = {c: kind_of(t) for c, t in usage.schema.items()}
        tables[name] = script.SourceTable(
            usage_table(name), kinds,
            lookup=(lookup_table(name), usage.lookup.key) if usage.lookup is not None else None)
    return tables


def metrics_result(customer_ids: pl.DataFrame, values: pl.DataFrame, shape: MetricsResult,
                   by_source: Mapping[str, Mapping[str, int]]) -> MetricsResult:
    """A MetricsResult from the engine's metric values (``values``: ID and each metric) and
    each source's counts, in the customers' order with the Polars path's dtypes (those of
    ``shape``, the Polars plan on no rows)."""
    schema = shape.values.schema
    values = customer_ids.select(ID).join(values, on=ID, how="left", maintain_order="left")
    values = values.select(ID, *[pl.col(n).cast(schema[n]) for n in schema if n != ID])
    counted = {name: {key: int(value or 0) for key, value in c.items()}
               for name, c in by_source.items()}
    totals = {key: sum(c[key] for c in counted.values()) for key in
              ("rows", "unknown_customer", "unmatched_key", "without_timestamp", "after_as_of")}
    return MetricsResult(
        values=values, kinds=shape.kinds, usage_rows=totals["rows"],
        unknown_customer_rows=totals["unknown_customer"],
        null_timestamp_rows=totals["without_timestamp"], after_as_of_rows=totals["after_as_of"],
        unmatched_key_rows=totals["unmatched_key"], by_source=counted)


def decide(backend: Backend, state: pl.DataFrame, compiled: CompiledRules) -> EngineResult:
    """`engine.decide.decide` on the engine (without ``trace``)."""
    dialect = backend.dialect
    state = state.sort(ROW)
    # only the columns the expressions read go to the engine (each hop carries them)
    keep = compiled.decision_columns(state.columns)
    backend.register_frame(CUSTOMERS, state.select(keep))
    steps = script.decision_steps(compiled, keep, CUSTOMERS, dialect)
    backend.execute([create_sql(name, query, dialect) for name, query in steps])
    statements = {
        "lc_final": script.final_stages_query(DECIDED),
        "lc_moves": script.moves_query(compiled, DECIDED),
        "lc_loops": script.loops_query(compiled, DECIDED),
        "lc_pending": script.pending_query(DECIDED),
    }
    backend.execute([create_sql(name, q, dialect) for name, q in statements.items()])
    final = backend.fetch("lc_final")
    moves, loops, pending = (backend.fetch(n) for n in ("lc_moves", "lc_loops", "lc_pending"))
    return result_from(state, compiled, final, moves, loops, pending)


def create_sql(name: str, query: Any, dialect: str) -> str:
    """``CREATE OR REPLACE TEMPORARY TABLE name AS query`` in the backend's dialect (Spark:
    ``CACHE TABLE``, see `script.temporary_table`); the query's tree is not copied."""
    create = script.temporary_table(name, query, dialect, replace=True)
    return str(create.sql(dialect=dialect, copy=False))


def _rule_ids(compiled: CompiledRules) -> dict[int, str]:
    return {r.index: r.rule.id for r in compiled.transitions}


def _rule_id(index: pl.Expr, ids: dict[int, str]) -> pl.Expr:
    """A rule's id from its place in the file (an empty frame keeps the text dtype)."""
    if not ids:
        return pl.lit(None, dtype=pl.String).alias("rule_id")
    return index.cast(pl.Int64).replace_strict(ids, default=None, return_dtype=pl.String) \
        .cast(pl.String).alias("rule_id")


def result_from(state: pl.DataFrame, compiled: CompiledRules, final: pl.DataFrame,
                moves: pl.DataFrame, loops: pl.DataFrame, pending: pl.DataFrame
                ) -> EngineResult:
    """An EngineResult from what the engine decided: ``final`` (ROW, STAGE, ENTERED),
    ``moves`` (ROW, hop, from_stage, to_stage, rule), ``loops`` (ROW, hop, STAGE, rule,
    to_stage), ``pending`` (ROW, STAGE, rule)."""
    as_of = compiled.as_of
    rules = compiled.rules
    id_dtype = state.schema[ID]
    ids = _rule_ids(compiled)
    rows = pl.col(ROW).cast(state.schema[ROW])
    final = final.with_columns(rows, pl.col(ENTERED).cast(pl.Date))
    started = state.with_columns(pl.col(STAGE).alias(PREVIOUS_STAGE))
    after = started.drop(STAGE, ENTERED).join(final.select(ROW, STAGE, ENTERED), on=ROW,
                                              how="left", maintain_order="left")
    decided = after.select(started.columns)
    records: list[pl.DataFrame] = []
    initial = state.filter(pl.col(STAGE).is_null())
    transition_schema = {**TRANSITION_SCHEMA, "customer_id": id_dtype}
    if initial.height:
        records.append(initial.select(
            pl.lit(as_of, dtype=pl.Date).alias("as_of"), pl.col(ID).alias("customer_id"),
            pl.lit(None, dtype=pl.String).alias("from_stage"),
            pl.lit(rules.initial_stage).alias("to_stage"),
            pl.lit(INITIAL_RULE).alias("rule_id"), pl.lit(0, dtype=pl.Int64).alias("hop"),
            pl.lit(None, dtype=pl.Int64).alias("days_in_from_stage"),
            pl.lit("", dtype=pl.String).alias("reason")))
    moves = moves.with_columns(rows, pl.col("hop").cast(pl.Int64), pl.col("rule").cast(pl.Int64))
    if moves.height:
        # each mover as it was when the hop evaluated it: in the stage it left, entered on
        # its start (hop 1, the initial stage's day included) or on the as-of date
        start = state.with_columns(
            pl.when(pl.col(STAGE).is_null()).then(pl.lit(as_of, dtype=pl.Date))
            .otherwise(pl.col(ENTERED)).alias(ENTERED)).drop(STAGE)
        at_hop = moves.drop(ID).join(start, on=ROW, how="left").with_columns(
            pl.col("from_stage").alias(STAGE),
            pl.when(pl.col("hop") == 1).then(pl.col(ENTERED))
            .otherwise(pl.lit(as_of, dtype=pl.Date)).alias(ENTERED))
        at_hop = with_builtins(at_hop.lazy(), compiled).collect()
        reason: Any = None
        for rule in compiled.transitions:
            value = compiled.reason_for(rule.condition)
            cond = pl.col("rule") == rule.index
            reason = pl.when(cond).then(value) if reason is None else \
                reason.when(cond).then(value)
        records.append(at_hop.sort(["hop", ROW]).select(
            pl.lit(as_of, dtype=pl.Date).alias("as_of"), pl.col(ID).alias("customer_id"),
            pl.col("from_stage").cast(pl.String), pl.col("to_stage").cast(pl.String),
            _rule_id(pl.col("rule"), ids),
            pl.col("hop"),
            pl.col(DAYS_IN_STAGE).cast(pl.Int64).alias("days_in_from_stage"),
            reason.otherwise(pl.lit("")).alias("reason")))
    transitions = pl.concat(records, how="vertical") if records else pl.DataFrame(
        schema=transition_schema)
    transitions = transitions.cast(transition_schema)  # type: ignore[arg-type]
    id_of = state.select(ROW, ID)
    loop_frame = loops.with_columns(rows).sort(["hop", ROW]).join(
        id_of, on=ROW, how="left", maintain_order="left").select(
        pl.col(ID), pl.col(STAGE).cast(pl.String),
        _rule_id(pl.col("rule"), ids), pl.col("to_stage").cast(pl.String))
    pending_frame = pending.with_columns(rows).sort(ROW).join(
        id_of, on=ROW, how="left", maintain_order="left").select(
        pl.col(ID), pl.col(STAGE).cast(pl.String),
        _rule_id(pl.col("rule"), ids))
    return EngineResult(state=decided, transitions=transitions, loops=loop_frame,
                        pending=pending_frame)
