# mypy: disable-error-code="list-item,arg-type,assignment,attr-defined"
# (sqlglot's builders are typed loosely: `.as_()` gives an `Expr`)
"""`lifecycle sql`: the day as one SQL script over a warehouse's tables.

The compiler needs each column's kind (a number, a date, text...). It learns them the
way a run does: from sample exports read as `lifecycle run` reads them (the header and a
few rows are enough; `--customers FILE`, `--usage [NAME=]FILE`, `--lookup NAME=FILE`).
The script then reads the warehouse's tables by name, under the export's own column
names (the rules' `columns:` mapping applies), and creates two tables:

- ``<prefix>customers``: one row per customer, its columns (under the export's names),
  then previous_stage, days_in_stage, expected_days, overdue, the derived values and
  the metrics;
- ``<prefix>transitions``: as_of, customer_id, from_stage, to_stage, rule_id, hop,
  days_in_from_stage, reason.

``select=`` gives one ``SELECT`` (a CTE chain) for either table instead: a dbt model.
A warehouse table has no row order: customers are ordered by id where the tool orders
them by input row. There is no state: ``previous()`` reads NULL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl
from sqlglot import exp

from ..columns import ENTERED, ID, ROW, SEGMENT, STAGE
from ..errors import OptionError, Problem
from ..expressions import Kind, kind_of
from ..sql import script
from ..sql.expressions import DIALECTS, SPARK_LIKE, cast, column
from ..version import __version__
from .pipeline import Prepared

OUTPUTS = ("customers", "transitions")
INPUT, METRICS, STATE = "lc_input", "lc_metrics", "lc_state"
DECIDED = script.DECIDED


@dataclass(frozen=True)
class WarehouseTables:
    """The warehouse's tables: customers, usage by source, lookups by name; the output
    tables' prefix."""

    customers: str
    usage: Mapping[str, str] = field(default_factory=dict)
    lookups: Mapping[str, str] = field(default_factory=dict)
    prefix: str = "lifecycle_"


_SQL_TYPES = {Kind.NUMBER: "DOUBLE", Kind.STRING: "VARCHAR", Kind.BOOL: "BOOLEAN",
              Kind.DATE: "DATE", Kind.DATETIME: "TIMESTAMP"}


def _sql_type(dtype: pl.DataType) -> str:
    if dtype.is_integer():
        return "BIGINT"
    return _SQL_TYPES.get(kind_of(dtype), "VARCHAR")


def _input_query(prepared: Prepared, tables: WarehouseTables) -> tuple[exp.Select, list[str]]:
    """The customers table under the rules' names, with a row number (by id) and
    ``previous(x)`` as NULL; and the columns the decision reads."""
    customers = prepared.loaded.customers
    external = customers.external
    state = prepared.state
    metrics = set(prepared.rules.metrics)
    own = [c for c in state.columns if c not in metrics and c != ROW]
    select: list[exp.Expression] = [
        exp.Sub(this=exp.Window(this=exp.RowNumber(), order=exp.Order(
            expressions=[exp.Ordered(this=column(external.get(ID, ID)))])),
            expression=exp.Literal.number(1)).as_(ROW, quoted=True)]
    for name in own:
        if name in prepared.rules.previous_names or name.startswith("previous("):
            select.append(cast(exp.Null(), _sql_type(state.schema[name])).as_(name, quoted=True))
        elif name == ENTERED:
            source = external.get(name, name)
            present = source in customers.raw.columns
            value = cast(column(source), "DATE") if present else cast(exp.Null(), "DATE")
            select.append(value.as_(name, quoted=True))
        elif name in (STAGE, SEGMENT) and external.get(name, name) not in customers.raw.columns:
            # no stage: the initial one; no `segment` of the export's own: the segments'
            # conditions (computed in the decision) cannot read one
            select.append(cast(exp.Null(), "VARCHAR").as_(name, quoted=True))
        else:
            select.append(column(external.get(name, name)).as_(name, quoted=True))
    table = exp.to_table(tables.customers)
    return exp.select(*select).from_(table), [ROW, *own]


def build_script(prepared: Prepared, tables: WarehouseTables, dialect: str,
                 select: str | None = None) -> str:
    """The SQL script for ``dialect`` (or, with ``select``, one SELECT for that output)."""
    if dialect not in DIALECTS:
        raise OptionError(f"--dialect {dialect}: one of {', '.join(DIALECTS)}")
    rules, compiled, as_of = prepared.rules, prepared.compiled, prepared.as_of
    missing = [n for n in prepared.loaded.sources if n not in tables.usage and
               rules.for_source(n).metrics]
    if missing:
        raise OptionError(Problem(
            f"no table for the usage source '{missing[0]}'",
            hint=f"give --usage-table {missing[0]}=SCHEMA.TABLE" if missing[0] != "usage"
            else "give --usage-table SCHEMA.TABLE"))
    sources: dict[str, script.SourceTable] = {}
    for name, usage in prepared.loaded.sources.items():
        if name not in tables.usage:
            continue
        kinds = {c: kind_of(t) for c, t in usage.schema.items()}
        renames = {c: rules.source_column(name, c) for c in usage.schema}
        lookup = None
        if usage.lookup is not None:
            if usage.lookup.name not in tables.lookups:
                raise OptionError(f"no table for the lookup '{usage.lookup.name}' (give "
                                  f"--lookup-table {usage.lookup.name}=SCHEMA.TABLE)")
            lookup = (tables.lookups[usage.lookup.name], usage.lookup.key)
        lookup_id = rules.lookups[usage.lookup.name].customer_id if usage.lookup else ID
        sources[name] = script.SourceTable(tables.usage[name], kinds, renames, lookup,
                                           lookup_id)
    input_query, base = _input_query(prepared, tables)
    metrics_query = script.metrics_query(rules, sources, INPUT, prepared.metrics.kinds, as_of,
                                         dialect)
    state_query = exp.select(
        exp.Column(this=exp.Star(), table=exp.to_identifier("i")),
        *[exp.column(exp.to_identifier(m, quoted=True), table="m") for m in rules.metrics],
    ).from_(exp.to_table(INPUT).as_("i")).join(
        exp.to_table(METRICS).as_("m"),
        on=exp.EQ(this=exp.column(exp.to_identifier(ID, quoted=True), table="i"),
                  expression=exp.column(exp.to_identifier(ID, quoted=True), table="m")),
        join_type="LEFT")
    decided = script.decision_steps(compiled, [*base, *rules.metrics], STATE, dialect,
                                    reasons=True, choose_segment=True)
    external = prepared.loaded.customers.external
    renames = {name: external.get(name, name) for name in base}
    outputs = {
        "customers": script.final_query(
            compiled, DECIDED, [c for c in base[1:] if not c.startswith("previous(")], dialect,
            renames),
        "transitions": script.transitions_query(compiled, DECIDED),
    }
    steps = [(INPUT, input_query), (METRICS, metrics_query), (STATE, state_query), *decided]
    head = (f"-- lifecycle {__version__}: {rules.name or 'rules'} as of {as_of}, "
            f"dialect {dialect}\n")
    if select is not None:
        query = outputs[select]
        for name, q in reversed(steps):
            query = _with_first(query, name, q)
        return head + query.sql(dialect=dialect, pretty=True) + ";\n"
    zone = _session_zone(dialect, rules.timezone)
    if zone:
        head += zone + ";\n\n"
    if dialect in SPARK_LIKE:
        # Spark has no temporary tables, and its temporary views are lazy: the outputs
        # would be one plan through every hop, which Spark's optimizer cannot handle (it
        # inlines each hop's projections into the next and runs out of memory, with CACHE
        # TABLE per step too: tests/test_spark_sql.py). Each step
        # is a table (DROP then CREATE: Spark's own catalog has no CREATE OR REPLACE TABLE
        # AS), dropped again at the end.
        statements: list[exp.Expression] = []
        for name, q in steps:
            statements += [exp.Drop(tables=[exp.to_table(name)], kind="TABLE", exists=True),
                           exp.Create(this=exp.to_table(name), kind="TABLE", expression=q)]
    else:
        statements = [script.temporary_table(name, q, dialect) for name, q in steps]
    statements += [exp.Create(this=exp.to_table(tables.prefix + name), kind="TABLE",
                              expression=q) for name, q in outputs.items()]
    if dialect in SPARK_LIKE:
        statements += [exp.Drop(tables=[exp.to_table(name)], kind="TABLE", exists=True)
                       for name, _ in steps]
    return head + "".join(s.sql(dialect=dialect, pretty=True) + ";\n\n" for s in statements)


_ZONE = {
    "duckdb": "SET TimeZone = {zone}",
    "postgres": "SET TIME ZONE {zone}",
    "snowflake": "ALTER SESSION SET TIMEZONE = {zone}",
    "spark": "SET TIME ZONE {zone}",  # SET spark.sql.session.timeZone = 'X' keeps the quotes
    "databricks": "SET TIME ZONE {zone}",
}


def _session_zone(dialect: str, timezone: str) -> str | None:
    """The statement that sets the session's time zone to the rules' (calendar days of a
    zoned timestamp are taken in it); BigQuery has none: its timestamps are UTC."""
    if dialect not in _ZONE:
        return None
    return _ZONE[dialect].format(zone="'" + timezone.replace("'", "''") + "'")


def _with_first(query: exp.Expression, name: str, body: exp.Expression) -> exp.Expression:
    """``query`` with ``name AS (body)`` as its first CTE."""
    with_ = query.args.get("with_") or query.args.get("with")
    cte = exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name)))
    if with_ is None:
        return query.with_(name, as_=body)
    with_.set("expressions", [cte, *with_.expressions])
    return query


def as_of_default() -> dt.date:
    return dt.date.today()
