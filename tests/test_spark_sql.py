"""Expressions compiled to Spark SQL, run on Spark (local[2]): they give what Polars gives,
and the meanings engines disagree on are pinned (LEAST/GREATEST with NULLs, day
differences across midnight in a time zone, TRY_CAST, round(2.5), x / 0)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from spark_util import choice
from test_sql_expressions import AS_OF, EXPRESSIONS, FRAME, SCOPE, polars_values, same

from lifecycle_cli.errors import DataError
from lifecycle_cli.expressions import compile_expression
from lifecycle_cli.sql import backend
from lifecycle_cli.sql.expressions import SqlCompiler

pytestmark = pytest.mark.spark


def spark_sql(text: str, scope: dict | None = None, *, condition: bool = False) -> str:
    compiled = compile_expression(text, SCOPE if scope is None else scope, as_of=AS_OF,
                                  condition=condition)
    return SqlCompiler(AS_OF, "spark").expression(compiled, condition=condition).sql(
        dialect="spark")


def run(engine: Any, select: list[str], table: str | None = "t") -> list[list[Any]]:
    """The columns of one SELECT, as lists of values in the frame's row order."""
    columns = ", ".join(f"{sql} AS `v{i}`" for i, sql in enumerate(select))
    engine.execute([f"CREATE OR REPLACE TEMPORARY VIEW result AS SELECT {columns}"
                    + (f" FROM {table}" if table else "")])
    out = engine.fetch("result")
    return [out[f"v{i}"].to_list() for i in range(len(select))]


@pytest.fixture(scope="module")
def engine(spark_session: Any) -> Any:
    """The Spark backend, in UTC like the frame, with the frame as the view `t`; the
    frame's row order kept (one partition)."""
    opened = backend.open_backend(choice("UTC"))
    opened.register_frame("t_in", FRAME.with_row_index("__row"))
    opened.execute(["CREATE OR REPLACE TEMPORARY VIEW t AS SELECT * FROM t_in "
                    "ORDER BY __row"])
    return opened


@pytest.fixture(scope="module")
def values(engine: Any) -> dict[str, list[Any]]:
    """Every expression's values on Spark, from one query (one Spark job, not a hundred);
    if that fails, one query each, so that the failures are the expressions' own."""
    try:
        got = run(engine, [spark_sql(text) for text in EXPRESSIONS])
        return dict(zip(EXPRESSIONS, got, strict=True))
    except DataError:
        out: dict[str, Any] = {}
        for text in EXPRESSIONS:
            try:
                out[text] = run(engine, [spark_sql(text)])[0]
            except DataError as err:
                out[text] = err
        return out


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_spark_equals_polars(values: dict[str, list[Any]], text: str) -> None:
    want, got = polars_values(text), values[text]
    if isinstance(got, DataError):
        pytest.fail(f"{text}: {spark_sql(text)}: {got}")
    assert all(same(w, g) for w, g in zip(want, got, strict=True)), (
        text, spark_sql(text), want, got)


def test_conditions_count_null_as_false(engine: Any) -> None:
    (got,) = run(engine, [spark_sql("n > 10 AND NOT f", condition=True)])
    assert got == [False, False, True, False]


@pytest.mark.parametrize(("text", "want"), [
    ("round(2.5)", 2.0), ("round(3.5)", 4.0), ("round(-2.5)", -2.0), ("1 / 0", None),
    ("0 / 0", None), ("CAST('12x' AS INTEGER)", None), ("CAST(' 7' AS INTEGER)", None),
    ("least(1, NULL)", 1), ("greatest(NULL, 2)", 2), ("least(NULL, NULL)", None),
    # 23:00 the day before, in the session's zone (the rules'), is 1 calendar day ago
    ("days_since(CAST('2026-10-31 23:00:00' AS TIMESTAMP))", 1),
    ("days_until(CAST('2026-11-01 23:59:00' AS TIMESTAMP))", 0),
])
def test_pinned_values(engine: Any, text: str, want: Any) -> None:
    (got,) = run(engine, [spark_sql(text, {})], table=None)
    assert got == [want]
    compiled = compile_expression(text, {}, as_of=AS_OF)
    assert FRAME.head(1).select(compiled.expr)[0, 0] == want


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata"])
def test_day_differences_are_calendar_days_in_the_rules_zone(spark_session: Any,
                                                             zone: str) -> None:
    """A naive timestamp is local to the rules' zone; its day is its own date there, across
    midnight and whatever the machine's or the JVM's zone."""
    opened = backend.open_backend(choice(zone))
    late = FRAME.select("late")  # 23:59 the day before, midnight on the day, ..., NULL
    opened.register_frame("lt", late)
    (got,) = run(opened, [spark_sql("days_since(late)")], table="lt")
    assert sorted(got, key=lambda v: (v is None, v)) == sorted(
        polars_values("days_since(late)"), key=lambda v: (v is None, v))
    assert sorted(v for v in got if v is not None) == [0, 1, 1]
    backend.open_backend(choice("UTC"))


def test_timestamps_come_back_as_naive_local_times(engine: Any) -> None:
    (got,) = run(engine, [spark_sql("ts")])
    assert got == FRAME["ts"].to_list()
    assert all(v is None or isinstance(v, dt.datetime) and v.tzinfo is None for v in got)


def test_the_spark_script_equals_lifecycle_run(spark_session: Any, tmp_path: Any) -> None:
    """`lifecycle sql --dialect spark`, run statement by statement with spark.sql over the
    fixture's exports as Spark tables, gives the stages and moves `lifecycle run` gives.
    (Its steps are tables: as lazy temporary views, the default rules' seven hops ran
    Spark's optimizer out of a 1 GB driver's memory, even with CACHE TABLE per hop.)"""
    from cli_util import AS_OF, DATA, RULES, lifecycle
    from engines import assert_script_equals_run

    from lifecycle_cli import parse_rules
    from lifecycle_cli.day.load import load
    from lifecycle_cli.sql.spark import SparkBackend

    rules_path = tmp_path / "rules.yaml"
    rules_path.write_text(RULES.read_text())
    made = lifecycle("sql", "--customers", DATA / "customers.csv", "--usage",
                     DATA / "usage.csv", "--customers-table", "customers", "--usage-table",
                     "usage", "--as-of", AS_OF, "--rules", rules_path, "--dialect", "spark")
    assert made.returncode == 0, made.stderr
    # a session of its own (the same Spark): none of the day's temporary views, as in a
    # warehouse; the script's tables go to the test run's warehouse folder
    fresh = spark_session.newSession()
    engine = SparkBackend(fresh, "UTC")
    rules = parse_rules(rules_path.read_text())
    loaded = load(rules, DATA / "customers.csv", [DATA / "usage.csv"])
    customers = loaded.customers
    engine.register_frame("customers", customers.typed.drop("__row").rename(
        {k: v for k, v in customers.external.items() if k in customers.typed.columns}))
    engine.register_frame("usage", loaded.sources["usage"].rows.collect())
    try:
        # the statements as written (one per paragraph), as Spark SQL or a notebook runs them
        for statement in made.stdout.split(";\n\n"):
            if statement.strip():
                fresh.sql(statement.strip().rstrip(";"))
        got = engine.fetch("lifecycle_transitions")
        stages = engine.fetch("lifecycle_customers").select(
            "customer_id", "stage", "stage_entered_at")
    finally:
        for table in ("lifecycle_customers", "lifecycle_transitions"):
            fresh.sql(f"DROP TABLE IF EXISTS {table}")
    assert fresh.sql("SHOW TABLES LIKE 'lc_*'").count() == 0  # the steps' tables dropped
    assert_script_equals_run(got, stages)
