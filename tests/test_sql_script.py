"""`lifecycle sql`: the DuckDB script run on DuckDB over the fixture gives what
`lifecycle run` gives; every dialect's script parses back and is kept as a snapshot."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
import sqlglot
from cli_util import AS_OF, DATA, RULES, lifecycle
from golden_util import assert_golden

from lifecycle_cli import parse_rules, run
from lifecycle_cli.day.load import load
from lifecycle_cli.sql.expressions import DIALECTS

duckdb = pytest.importorskip("duckdb")

SAMPLE = ["--customers", DATA / "customers.csv", "--usage", DATA / "usage.csv",
          "--customers-table", "customers", "--usage-table", "usage", "--as-of", AS_OF,
          "--rules", RULES]


def script(*extra: str) -> str:
    result = lifecycle("sql", *SAMPLE, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def warehouse() -> Any:
    """The fixture's exports as DuckDB tables, typed as a run reads them."""
    rules = parse_rules(RULES.read_text())
    loaded = load(rules, DATA / "customers.csv", [DATA / "usage.csv"])
    customers = loaded.customers
    typed = customers.typed.drop("__row").rename(
        {k: v for k, v in customers.external.items() if k in customers.typed.columns})
    usage = loaded.sources["usage"].rows.collect()
    con = duckdb.connect()
    con.register("customers_frame", typed.to_arrow())
    con.register("usage_frame", usage.to_arrow())
    con.execute("CREATE TABLE customers AS SELECT * FROM customers_frame")
    con.execute("CREATE TABLE usage AS SELECT * FROM usage_frame")
    yield con
    con.close()


def test_the_duckdb_script_equals_lifecycle_run(warehouse: Any) -> None:
    warehouse.execute(script("--dialect", "duckdb"))
    got = pl.from_arrow(warehouse.sql("SELECT * FROM lifecycle_transitions").to_arrow_table())
    stages = pl.from_arrow(warehouse.sql(
        "SELECT customer_id, stage, stage_entered_at FROM lifecycle_customers").to_arrow_table())
    want = run(parse_rules(RULES.read_text()), DATA / "customers.csv", [DATA / "usage.csv"],
               dt.date.fromisoformat(AS_OF))
    assert isinstance(got, pl.DataFrame) and isinstance(stages, pl.DataFrame)
    key = ["hop", "customer_id"]
    columns = ["as_of", "customer_id", "from_stage", "to_stage", "rule_id", "hop",
               "days_in_from_stage", "reason"]
    expected = want.transitions.select(columns).sort(key)
    assert got.select(columns).cast(dict(expected.schema)).sort(key).equals(expected)
    final = want.customers.select("customer_id", "stage", "stage_entered_at").sort(
        "customer_id")
    assert stages.sort("customer_id").cast(dict(final.schema)).equals(final)


def test_one_select_per_output_for_dbt(warehouse: Any) -> None:
    for output in ("customers", "transitions"):
        text = script("--dialect", "duckdb", "--select", output)
        assert "CREATE" not in text
        rows = warehouse.sql(text.rstrip().rstrip(";")).fetchall()
        assert rows


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_parses_back_and_matches_its_snapshot(dialect: str) -> None:
    text = script("--dialect", dialect)
    statements = sqlglot.parse(text, read=dialect)
    created = [s.this.sql() for s in statements if isinstance(s, sqlglot.exp.Create)]
    assert created[-2:] == ["lifecycle_customers", "lifecycle_transitions"]
    assert_golden(text, f"sql/script.{dialect}.sql")


def test_an_unknown_usage_table_is_asked_for() -> None:
    result = lifecycle("sql", "--customers", DATA / "customers.csv", "--usage",
                       DATA / "usage.csv", "--customers-table", "customers", "--as-of", AS_OF,
                       "--rules", RULES)
    assert result.returncode == 2
    assert "--usage-table" in result.stderr
