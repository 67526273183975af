"""SQL expressions compiled to Polars: semantics, types, and the errors users see."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle_cli.expressions import (
    ExpressionError,
    Kind,
    compile_expression,
    kind_of,
    parse,
    reason_expr,
    referenced_names,
)

AS_OF = dt.date(2026, 11, 1)
FRAME = pl.DataFrame(
    {
        "n": [1, None, 50, 40],
        "f": [True, None, False, True],
        "s": ["churned", "x", None, "Churned"],
        "d": [dt.date(2026, 1, 1), None, dt.date(2027, 1, 30), dt.date(2026, 10, 2)],
        "ts": [dt.datetime(2026, 10, 31, 23, 0), None, None, dt.datetime(2026, 11, 1, 1, 0)],
    }
)
SCOPE = {c: kind_of(t) for c, t in FRAME.schema.items()}


def values(text: str, *, condition: bool = False) -> list:
    compiled = compile_expression(text, SCOPE, as_of=AS_OF, condition=condition)
    expr = compiled.as_condition() if condition else compiled.expr
    return FRAME.select(expr.alias("v"))["v"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n < 40 OR f", [True, None, False, True]),
        ("n < 40 AND f", [True, None, False, False]),
        ("NOT f", [False, None, True, False]),
        ("n BETWEEN 1 AND 40", [True, None, False, True]),
        ("n NOT BETWEEN 1 AND 40", [False, None, True, False]),
        ("s IN ('churned', 'x')", [True, True, None, False]),
        ("s NOT IN ('churned', 'x')", [False, False, None, True]),
        ("s LIKE 'ch%'", [True, False, None, False]),
        ("s ILIKE 'CH%'", [True, False, None, True]),
        ("s LIKE '_'", [False, True, None, False]),
        ("n IS NULL", [False, True, False, False]),
        ("n IS NOT NULL", [True, False, True, True]),
        ("f IS TRUE", [True, False, False, True]),
        ("COALESCE(n, 0) + 1", [2, 1, 51, 41]),
        (
            "CASE WHEN n >= 40 THEN 'big' WHEN n < 40 THEN 'small' END",
            ["small", None, "big", "big"],
        ),
        ("CASE s WHEN 'x' THEN 1 ELSE 0 END", [0, 1, 0, 0]),
        ("n / 0", [None, None, None, None]),
        ("n / 4", [0.25, None, 12.5, 10.0]),
        ("days_since(d)", [304, None, -90, 30]),
        ("days_until(d)", [-304, None, 90, -30]),
        ("days_until(d) <= 90", [True, None, True, True]),
        ("days_since(ts)", [1, None, None, 0]),
        ("d > '2026-06-01'", [False, None, True, True]),
        ("d > DATE '2026-06-01'", [False, None, True, True]),
        ("d - as_of > INTERVAL '60 days'", [False, None, True, False]),
        ("as_of - d >= INTERVAL '30 days'", [True, None, False, True]),
        ("abs(-n) + round(2.4)", [3.0, None, 52.0, 42.0]),
        ("lower(s) = 'churned'", [True, False, None, True]),
        ("greatest(n, 10)", [10, 10, 50, 40]),
    ],
)
def test_semantics(text: str, expected: list) -> None:
    assert values(text) == expected


def test_null_condition_counts_as_false() -> None:
    assert values("n > 10", condition=True) == [False, False, True, True]
    assert values("NOT f", condition=True) == [False, False, True, False]


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        (
            "d - as_of <= 90",
            "compares a date difference (d - as_of) with a bare number",
            "days_until(d) <= 90",
        ),
        ("d > 30", "compares a date (d) with a bare number", "days_since"),
        ("ts < 5", "compares a datetime (ts) with a bare number", "days_since"),
        ("d + 30 > as_of", "mixes a date with a bare number", "INTERVAL"),
        ("n > 'x'", "compares a number with text", None),
        ('s = "churned"', "unknown name 'churned'", "double quotes name a column"),
        ("SUM(n) > 1", "aggregate 'SUM(n)' is not allowed", "define a metric"),
        ("nn > 1", "unknown name 'nn'", "did you mean 'n'?"),
        ("n", "a condition must be true or false", None),
        ("days_since(s) > 3", "days_since(s) needs a date, but s is text", None),
        ("day_since(d) > 3", "unknown function day_since()", "did you mean 'days_since'?"),
        ("n > 3 AND", "cannot parse", None),
        ("f AND n", "AND needs true/false operands", None),
        ("s LIKE n", "the LIKE pattern must be a text literal", None),
        ("x.n > 1", "qualified name", None),
        ("SELECT 1", "is not an expression", None),
        ("", "the expression is empty", None),
    ],
)
def test_errors(text: str, message: str, hint: str | None) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, SCOPE, as_of=AS_OF, condition=True)
    assert message in info.value.message
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_unknown_name_reports_the_column() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("nn > 1", SCOPE, as_of=AS_OF)
    assert info.value.column == "nn"


def test_referenced_names_in_order_and_function_arguments_stand_for_themselves() -> None:
    tree = parse("days_since(last_seen) > 14 AND (plan = 'x' OR last_seen IS NULL) AND as_of > d")
    assert referenced_names(tree) == ["last_seen", "plan", "as_of", "d"]
    compiled = compile_expression("days_until(d) <= 90 AND f", SCOPE, as_of=AS_OF)
    assert compiled.names == ("d", "f")


def test_reason_formats_null_booleans_dates_and_numbers() -> None:
    expr = reason_expr([(c, pl.col(c), SCOPE[c]) for c in ("n", "f", "d", "ts", "s")])
    rows = FRAME.select(expr.alias("r"))["r"].to_list()
    assert rows[0] == "n=1; f=true; d=2026-01-01; ts=2026-10-31T23:00:00; s=churned"
    assert rows[1] == "n=null; f=null; d=null; ts=null; s=x"


def test_kinds() -> None:
    assert kind_of(pl.Int32) == Kind.NUMBER
    assert kind_of(pl.Datetime("us", "UTC")) == Kind.DATETIME
    assert kind_of(pl.Categorical()) == Kind.STRING
    assert compile_expression("days_since(d)", SCOPE, as_of=AS_OF).kind == Kind.NUMBER
    assert compile_expression("d - as_of", SCOPE, as_of=AS_OF).kind == Kind.DURATION


def test_double_quotes_hint_wins_over_a_close_column_name() -> None:
    scope = {**SCOPE, "churn_notice": Kind.BOOL}
    with pytest.raises(ExpressionError) as info:
        compile_expression('s = "churned"', scope, as_of=AS_OF)
    assert info.value.hint == "double quotes name a column; for the text write 'churned'"


def test_double_pipe_is_not_or() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("n > 50 || f", SCOPE, as_of=AS_OF)
    assert "|| joins text" in info.value.message
    assert "OR" in (info.value.hint or "")
    assert values("s || '!'") == ["churned!", "x!", None, "Churned!"]


# -- months and years -------------------------------------------------------------------------


def on(day: dt.date, text: str, as_of: dt.date = AS_OF) -> object:
    """The value of ``text`` with ``d`` = ``day``."""
    frame = pl.DataFrame({"d": [day]}, schema={"d": pl.Date})
    compiled = compile_expression(text, {"d": Kind.DATE, "n": Kind.NUMBER}, as_of=as_of)
    return frame.with_columns(pl.lit(None, dtype=pl.Int64).alias("n")).select(
        compiled.expr.alias("v"))["v"].item()


@pytest.mark.parametrize(
    ("day", "text", "expected"),
    [
        # a day the target month lacks becomes its last day
        (dt.date(2026, 1, 31), "d + INTERVAL '1 month'", dt.date(2026, 2, 28)),
        (dt.date(2024, 1, 31), "d + INTERVAL '1 month'", dt.date(2024, 2, 29)),
        (dt.date(2024, 1, 31), "add_months(d, 1)", dt.date(2024, 2, 29)),
        (dt.date(2026, 3, 31), "d - INTERVAL '1 month'", dt.date(2026, 2, 28)),
        (dt.date(2024, 2, 29), "d + INTERVAL '1 year'", dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 29), "d + INTERVAL '4' YEAR", dt.date(2028, 2, 29)),
        (dt.date(2024, 2, 29), "add_months(d, 12)", dt.date(2025, 2, 28)),
        (dt.date(2026, 1, 31), "d + INTERVAL '2 months'", dt.date(2026, 3, 31)),
        # each step clamps: Jan 31 + 1 month + 1 month is Mar 28, not Mar 31
        (dt.date(2026, 1, 31), "d + INTERVAL '1 month' + INTERVAL '1 month'",
         dt.date(2026, 3, 28)),
        (dt.date(2026, 1, 31), "d + (INTERVAL '1 month' + INTERVAL '1 month')",
         dt.date(2026, 3, 31)),
        (dt.date(2026, 11, 15), "INTERVAL '3 months' + d", dt.date(2027, 2, 15)),
        (dt.date(2026, 11, 15), "d - INTERVAL '18 months'", dt.date(2025, 5, 15)),
        (dt.date(2026, 11, 15), "add_months(d, -11)", dt.date(2025, 12, 15)),
        (dt.date(2026, 11, 15), "add_months(d, n)", None),  # NULL months: NULL
        (dt.date(2026, 11, 15), "add_months(d, 2.0)", dt.date(2027, 1, 15)),
        (dt.date(2026, 11, 15), "add_months(d, 5 / 2)", None),  # not whole: NULL
    ],
)
def test_month_arithmetic_keeps_the_day_or_takes_the_last_day_of_the_month(
        day: dt.date, text: str, expected: dt.date | None) -> None:
    assert on(day, text) == expected


@pytest.mark.parametrize(
    ("day", "as_of", "since"),
    [
        (dt.date(2026, 1, 31), dt.date(2026, 2, 27), 0),
        (dt.date(2026, 1, 31), dt.date(2026, 2, 28), 1),  # Jan 31 + 1 month is Feb 28
        (dt.date(2024, 1, 31), dt.date(2024, 2, 28), 0),  # ... Feb 29 in a leap year
        (dt.date(2024, 1, 31), dt.date(2024, 2, 29), 1),
        (dt.date(2026, 1, 15), dt.date(2026, 2, 14), 0),
        (dt.date(2026, 1, 15), dt.date(2026, 2, 15), 1),
        (dt.date(2026, 1, 15), dt.date(2026, 1, 15), 0),
        (dt.date(2024, 2, 29), dt.date(2025, 2, 28), 12),
        (dt.date(2024, 2, 29), dt.date(2025, 2, 27), 11),
        (dt.date(2025, 11, 1), dt.date(2026, 11, 1), 12),
        (dt.date(2026, 3, 31), dt.date(2026, 2, 28), -1),  # a future date: negative
        (dt.date(2026, 3, 15), dt.date(2026, 2, 20), 0),
    ],
)
def test_months_since_counts_whole_months(day: dt.date, as_of: dt.date, since: int) -> None:
    assert on(day, "months_since(d)", as_of) == since
    assert on(day, "months_until(d)", as_of) == -since


@settings(max_examples=examples(200), deadline=None)
@given(day=st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)),
       as_of=st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)),
       months=st.integers(-400, 400))
def test_months_since_agrees_with_add_months(day: dt.date, as_of: dt.date, months: int) -> None:
    """months_since(d) >= n exactly when add_months(d, n) <= as_of (n >= 0), and
    months_until(d) = -months_since(d)."""
    frame = pl.DataFrame({"d": [day], "n": [months]})
    scope = {"d": Kind.DATE, "n": Kind.NUMBER}

    def value(text: str) -> Any:
        compiled = compile_expression(text, scope, as_of=as_of)
        return frame.select(compiled.expr.alias("v"))["v"].item()

    since = value("months_since(d)")
    assert value("months_until(d)") == -since
    if months >= 0:
        assert (since >= months) == value("add_months(d, n) <= as_of")


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("as_of - d > INTERVAL '1 month'", "compares a month interval", "months_until"),
        ("months_since(d) > DATE '2026-01-01'", "with a bare number", "days_since"),
        ("d + INTERVAL '1 month' > 3", "compares a date (d + INTERVAL '1' MONTH) with a bare "
         "number", "days_since"),
        ("d + (INTERVAL '1 month' + INTERVAL '2 days') > d", "combines months with days",
         "one after the other"),
        ("d + INTERVAL '1 month' * 2 > d", "mixes a month interval with a bare number",
         "add_months(d, n)"),
        ("months_since(n) > 2", "months_since(n) needs a date, but n is a number", None),
        ("add_months('2026-01-31', 1) > d", "needs a date, but '2026-01-31' is text",
         "DATE '2026-01-31'"),
        ("add_months(d, 1.5) > d", "adds a whole number of months", None),
        ("add_months(d, s) > d", "add_months() needs a number", None),
        ("d > d + INTERVAL '1 quarter'", "intervals are whole days, weeks, months or years",
         "INTERVAL '3 months'"),
        ("d > d + INTERVAL '1.5 months'", "intervals are whole days, weeks, months or years",
         None),
    ],
)
def test_month_errors(text: str, message: str, hint: str | None) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, SCOPE, as_of=AS_OF, condition=True)
    assert message in info.value.message
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_a_month_interval_alone_is_not_a_value() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("INTERVAL '12 months'", SCOPE, as_of=AS_OF)
    assert "month interval, not a value" in info.value.message
    assert "add_months" in (info.value.hint or "")


def test_month_functions_take_datetimes_by_their_day() -> None:
    assert values("months_since(ts)") == [0, None, None, 0]
    assert values("ts + INTERVAL '1 month'") == [dt.datetime(2026, 11, 30, 23, 0), None, None,
                                                  dt.datetime(2026, 12, 1, 1, 0)]


# -- previous() ---------------------------------------------------------------------------------


def test_previous_reads_the_column_of_the_previous_run_with_the_kind_of_the_name() -> None:
    frame = FRAME.with_columns((pl.col("n") + 25).alias("previous(n)"))
    compiled = compile_expression("previous(n) - n >= 20", SCOPE, as_of=AS_OF, condition=True,
                                  previous={"n", "s"})
    assert frame.select(compiled.as_condition().alias("v"))["v"].to_list() == [
        True, False, True, True]
    assert compiled.names == ("previous(n)", "n")
    assert compile_expression("PREVIOUS(s)", SCOPE, as_of=AS_OF, previous={"s"}).kind \
        == Kind.STRING


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("previous(nn) > 1", "unknown name 'nn' in previous(nn)", "did you mean 'n'?"),
        ("previous(days_in_stage) > 1", "'days_in_stage' is a built-in value",
         "read previous(days)"),
        ("previous(as_of) > d", "'as_of' is a built-in value", None),
        ("previous(n + 1) > 1", "previous(n + 1): previous() takes one name", None),
        ("previous(n, s) > 1", "previous(n, s): previous() takes one name", None),
        ("previous(x.n) > 1", "previous() takes one name", None),
    ],
)
def test_previous_errors(text: str, message: str, hint: str | None) -> None:
    scope = {**SCOPE, "days_in_stage": Kind.NUMBER}
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, scope, as_of=AS_OF, condition=True, previous={"n", "s", "d"})
    assert message in info.value.message
    if hint is not None:
        assert info.value.hint is not None and hint in info.value.hint


def test_previous_is_refused_where_it_has_no_meaning() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("previous(n) > 1", SCOPE, as_of=AS_OF)  # a metric's `where`
    assert "previous() is not allowed here" in info.value.message
    assert "usage rows" in (info.value.hint or "")
