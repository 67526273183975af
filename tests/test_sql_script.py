"""`lifecycle sql`: the DuckDB script run on DuckDB over the fixture gives what
`lifecycle run` gives; every dialect's script parses back and is kept as a snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlglot
from cli_util import AS_OF, DATA, RULES, lifecycle
from engines import assert_script_equals_run
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
    assert_script_equals_run(got, stages)

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
    created = [s.this.sql() for s in statements
               if isinstance(s, sqlglot.exp.Create | sqlglot.exp.Cache)]
    assert created[-2:] == ["lifecycle_customers", "lifecycle_transitions"]
    assert_golden(text, f"sql/script.{dialect}.sql")


def test_an_unknown_usage_table_is_asked_for() -> None:
    result = lifecycle("sql", "--customers", DATA / "customers.csv", "--usage",
                       DATA / "usage.csv", "--customers-table", "customers", "--as-of", AS_OF,
                       "--rules", RULES)
    assert result.returncode == 2
    assert "--usage-table" in result.stderr


def test_named_sources_and_a_lookup_in_the_warehouse(tmp_path: Path) -> None:
    """Two sources, one through a lookup, as warehouse tables under the exports' own
    column names: the DuckDB script gives `lifecycle run`'s stages and transitions."""
    import test_sources

    files = test_sources.exports(tmp_path)
    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(test_sources.ISSUE_RULES)
    con = duckdb.connect()
    for name in ("accounts", "subscriptions", "feature_usage", "tickets"):
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_csv('{files[name]}', "
                    "auto_detect = true)")
    result = lifecycle("sql", "--rules", rules_path, "--as-of", "2024-06-30",
                       *test_sources.cli_inputs(files), "--customers-table", "accounts",
                       "--usage-table", "feature_usage=feature_usage",
                       "--usage-table", "tickets=tickets",
                       "--lookup-table", "subscriptions=subscriptions")
    assert result.returncode == 0, result.stderr
    con.execute(result.stdout)
    want = run(parse_rules(test_sources.ISSUE_RULES), files["accounts"],
               {"feature_usage": [files["feature_usage"]], "tickets": [files["tickets"]]},
               dt.date(2024, 6, 30), tables=_tables(files))
    got = con.sql("SELECT account_id, stage FROM lifecycle_customers ORDER BY 1").fetchall()
    assert got == sorted(want.customers.select("account_id", "stage").rows())
    moves = con.sql("SELECT customer_id, rule_id, hop FROM lifecycle_transitions "
                    "ORDER BY hop, customer_id").fetchall()
    assert moves == want.transitions.sort("hop", "customer_id").select(
        "customer_id", "rule_id", "hop").rows()


def _tables(files: dict[str, Path]) -> Any:
    from lifecycle_cli.day.load import Tables

    return Tables(lookups={"subscriptions": files["subscriptions"]})
