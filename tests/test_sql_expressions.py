"""Expressions compiled to SQL: on DuckDB they give what Polars gives; every dialect's text
parses back with sqlglot and is kept as a snapshot; the functions engines disagree on are
pinned (LEAST/GREATEST with NULLs, day differences, failed casts, round(2.5), x / 0)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import polars as pl
import pytest
import sqlglot
import test_expressions
from golden_util import assert_golden

from lifecycle_cli.expressions import compile_expression, kind_of
from lifecycle_cli.sql.expressions import DIALECTS, SqlCompiler

duckdb = pytest.importorskip("duckdb")

AS_OF = test_expressions.AS_OF
FRAME = test_expressions.FRAME.with_columns(
    pl.Series("x", [2.5, -2.5, 0.125, None]),
    pl.Series("t", ["12", "12x", None, " 7"]),
    pl.Series("late", [dt.datetime(2026, 10, 31, 23, 59), dt.datetime(2026, 11, 1, 0, 0),
                       dt.datetime(2026, 10, 31, 0, 0), None]),
)
SCOPE = {c: kind_of(t) for c, t in FRAME.schema.items()}

# every expression of test_expressions.test_semantics, and those engines are known to
# disagree on
SEMANTICS = [text for text, _ in test_expressions.test_semantics.pytestmark[0].args[1]]
PINNED = [
    "least(n, NULL, 3)", "greatest(n, NULL)", "least(NULL, n)", "greatest(d, DATE '2026-06-01')",
    "days_since(late)", "days_until(late)", "days_since(ts)", "as_of - late > INTERVAL '0 days'",
    "CAST(t AS INTEGER)", "CAST('12x' AS INTEGER)", "CAST(t AS DOUBLE)", "CAST(x AS INTEGER)",
    "CAST(f AS INTEGER)", "CAST(n AS TEXT)",
    "round(2.5)", "round(3.5)", "round(x)", "round(x, 2)", "round(-0.5)", "round(n / 3, 2)",
    "n / 0", "x / 0", "n % 0", "n % 3", "-n % 3", "0 / 0",
    "months_since(d)", "months_until(d)", "add_months(d, 1)", "add_months(d, -13)",
    "d + INTERVAL '1 month'", "d - INTERVAL '1 year'", "add_months(DATE '2024-02-29', 12)",
    "d + INTERVAL '3 days'", "IF(f, 1, 2)", "s || 'z'", "length(s)", "upper(s)", "trim(t)",
    "s NOT LIKE 'ch%'", "s LIKE 'a\\b%'", "ts >= d", "ts > '2026-11-01'",
    "CASE WHEN f THEN d END", "COALESCE(NULL, n)", "n IS NULL OR f IS NOT TRUE",
]
EXPRESSIONS = list(dict.fromkeys([*SEMANTICS, *PINNED]))


def polars_values(text: str) -> list[Any]:
    compiled = compile_expression(text, SCOPE, as_of=AS_OF)
    return FRAME.with_columns(compiled.expr.alias("v"))["v"].to_list()


@pytest.fixture(scope="module")
def con() -> Any:
    connection = duckdb.connect()
    connection.register("t", FRAME.to_arrow())
    yield connection
    connection.close()


def same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        return False
    return bool(a == b)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_duckdb_equals_polars(con: Any, text: str) -> None:
    compiled = compile_expression(text, SCOPE, as_of=AS_OF)
    sql = SqlCompiler(AS_OF, "duckdb").expression(compiled).sql(dialect="duckdb")
    got = [row[0] for row in con.sql(f"SELECT {sql} FROM t").fetchall()]
    want = polars_values(text)
    assert all(same(w, g) for w, g in zip(want, got, strict=True)), (text, sql, want, got)


def test_conditions_count_null_as_false(con: Any) -> None:
    compiled = compile_expression("n > 10 AND NOT f", SCOPE, as_of=AS_OF, condition=True)
    sql = SqlCompiler(AS_OF, "duckdb").expression(compiled, condition=True).sql("duckdb")
    assert [r[0] for r in con.sql(f"SELECT {sql} FROM t").fetchall()] == [
        False, False, True, False]


@pytest.mark.parametrize(("text", "want"), [
    ("round(2.5)", 2.0), ("round(3.5)", 4.0), ("round(-2.5)", -2.0), ("1 / 0", None),
    ("CAST('12x' AS INTEGER)", None), ("least(1, NULL)", 1), ("greatest(NULL, 2)", 2),
    ("days_since(CAST('2026-10-31 23:00:00' AS TIMESTAMP))", 1),
])
def test_pinned_values(con: Any, text: str, want: Any) -> None:
    compiled = compile_expression(text, {}, as_of=AS_OF)
    sql = SqlCompiler(AS_OF, "duckdb").expression(compiled).sql("duckdb")
    assert con.sql(f"SELECT {sql}").fetchall()[0][0] == want
    assert FRAME.head(1).select(compiled.expr)[0, 0] == want


@pytest.mark.parametrize("dialect", DIALECTS)
def test_dialect_snapshot_parses_back(dialect: str) -> None:
    lines = []
    for text in EXPRESSIONS:
        compiled = compile_expression(text, SCOPE, as_of=AS_OF)
        sql = SqlCompiler(AS_OF, dialect).expression(compiled).sql(dialect=dialect)
        sqlglot.parse_one(sql, read=dialect)  # raises on text the dialect cannot read
        lines.append(f"-- {text}\n{sql};\n")
    assert_golden("\n".join(lines), f"sql/expressions.{dialect}.sql")


@pytest.mark.parametrize(("dialect", "fragment"), [
    ("bigquery", "SAFE_CAST("), ("spark", "TRY_CAST("), ("snowflake", "TRY_CAST("),
    ("duckdb", "TRY_CAST("), ("postgres", "~"), ("spark", "RLIKE"), ("duckdb", "ROUND_EVEN("),
    ("spark", "BROUND("), ("bigquery", "FLOOR("),
])
def test_dialect_specific_forms(dialect: str, fragment: str) -> None:
    text = "round(x) > 0" if "ROUND" in fragment or "FLOOR" in fragment else \
        "CAST(t AS INTEGER) > 0"
    compiled = compile_expression(text, SCOPE, as_of=AS_OF)
    assert fragment in SqlCompiler(AS_OF, dialect).expression(compiled).sql(dialect=dialect)


@pytest.mark.parametrize("dialect", ["bigquery", "snowflake"])
def test_least_ignores_nulls_where_the_dialect_would_not(dialect: str) -> None:
    compiled = compile_expression("least(n, x)", SCOPE, as_of=AS_OF)
    sql = SqlCompiler(AS_OF, dialect).expression(compiled).sql(dialect=dialect)
    assert 'LEAST(COALESCE("n", "x"), COALESCE("x", "n"))' in sql.replace("`", '"')


def test_unknown_dialect() -> None:
    with pytest.raises(ValueError, match="unknown dialect"):
        SqlCompiler(AS_OF, "oracle")


def test_portable_round_halves_to_even(con: Any) -> None:
    """The FLOOR form that BigQuery, Snowflake and Postgres get, run on DuckDB."""
    from lifecycle_cli.sql.expressions import column, round_half_even

    for digits in (0, 2):
        sql = round_half_even(column("x"), digits, "bigquery").sql("duckdb")
        got = [r[0] for r in con.sql(f"SELECT {sql} FROM t").fetchall()]
        want = FRAME.select(pl.col("x").round(digits))["x"].to_list()
        assert got == want, (digits, got, want)
