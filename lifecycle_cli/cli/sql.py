"""`lifecycle sql`: print the rules for one as-of date as an SQL script for a warehouse."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError
from . import common


class Dialect(str, Enum):
    duckdb = "duckdb"
    spark = "spark"
    databricks = "databricks"
    snowflake = "snowflake"
    bigquery = "bigquery"
    postgres = "postgres"


class Output(str, Enum):
    customers = "customers"
    transitions = "transitions"


def register(app: typer.Typer) -> None:
    app.command(
        "sql",
        epilog=common.examples(
            "lifecycle sql --rules rules/default.yaml --as-of 2026-11-01 --dialect snowflake "
            "--customers sample_data/customers.csv --usage sample_data/usage.csv "
            "--customers-table crm.customers --usage-table product.events",
            "lifecycle sql --rules rules/default.yaml --as-of 2026-11-01 --dialect bigquery "
            "--customers sample_data/customers.csv --usage sample_data/usage.csv "
            "--customers-table crm.customers --usage-table product.events --select "
            "transitions",
        ),
    )(sql)


def _named(values: list[str] | None, option: str, default: str | None = None
           ) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, table = value.partition("=")
        if not sep:
            if default is None:
                raise OptionError(f"{option} {value}: give NAME=TABLE")
            name, table = default, value
        if not name or not table:
            raise OptionError(f"{option} {value}: give NAME=TABLE")
        out[name] = table
    return out


@common.handle_errors
def sql(
    rules: common.RulesOpt,
    customers: Annotated[
        Path,
        typer.Option("--customers", help="A sample of the customers export (its header and "
                     "types tell the compiler each column's kind).", show_default=False),
    ],
    customers_table: Annotated[
        str,
        typer.Option("--customers-table", help="The warehouse table of customers, under the "
                     "export's column names (schema.table).", show_default=False),
    ],
    dialect: Annotated[
        Dialect, typer.Option("--dialect", help="The SQL dialect to write.")
    ] = Dialect.duckdb,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    usage_table: Annotated[
        list[str] | None,
        typer.Option("--usage-table", help="The table of a usage source: TABLE (the source "
                     "`usage`) or NAME=TABLE; repeatable.", show_default=False),
    ] = None,
    lookup_table: Annotated[
        list[str] | None,
        typer.Option("--lookup-table", help="The table of a lookup: NAME=TABLE; repeatable.",
                     show_default=False),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="The output tables' names: PREFIXcustomers, "
                          "PREFIXtransitions.")
    ] = "lifecycle_",
    select: Annotated[
        Output | None,
        typer.Option("--select", help="Print one SELECT for this output instead of the "
                     "script (a dbt model).", show_default=False),
    ] = None,
    as_of: common.AsOfOpt = None,
    encoding: common.EncodingOpt = None,
) -> None:
    """Print the day's decision as SQL for a warehouse: one script that creates the
    customers and transitions tables (or, with --select, one SELECT).

    Every expression is compiled from the rules' typed tree for the dialect, with the
    meaning pinned as on every engine (docs/engines.md).
    """
    import datetime as dt

    from ..day.load import load
    from ..day.pipeline import prepare
    from ..day.warehouse import WarehouseTables, build_script
    from ..rules.load import load_rules

    rule_set = load_rules(rules)
    day = as_of or dt.date.today()
    tables = WarehouseTables(customers_table, _named(usage_table, "--usage-table", "usage"),
                             _named(lookup_table, "--lookup-table"), prefix)
    loaded = load(rule_set, customers, usage or [], encoding=encoding,
                  tables=common.tables(lookup, None, None))
    prepared = prepare(rule_set, loaded, day)
    text = build_script(prepared, tables, dialect.value,
                        select=select.value if select is not None else None)
    common.write_to_stdout(lambda stream: stream.write(text.encode()))
