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
