"""The aggregation registry: the rest of the system follows it, and docs/rules.md agrees.

Test-only aggregations are registered by fixtures (and removed afterwards), then
taken through everything an aggregation reaches: the rules model, its checks,
a run's batched pass (`compute_metrics`, `run`) and a backfill's replay.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import runtime_imports, write_csv
from polars.testing import assert_frame_equal

from lifecycle_cli import DataError, RulesError, parse_rules, run
from lifecycle_cli.expressions import Kind
from lifecycle_cli.inputs.usage import scan_usage
from lifecycle_cli.metrics import aggregations
from lifecycle_cli.metrics.aggregations import (
    AGGREGATIONS,
    Aggregation,
    ColumnUse,
    Partial,
    always,
    register,
    unregister,
)
from lifecycle_cli.metrics.compute import compute_metrics
from lifecycle_cli.metrics.replay import MetricsReplay
from lifecycle_cli.suggest import or_list

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 1)
HEAD = "version: 1\nstages: [{name: A}]\ninitial_stage: A\nmetrics:\n"


@pytest.fixture
def test_aggregations() -> Iterator[None]:
    """Three aggregations that exist only in these tests: one computed from partials over a
    numeric column, one over rows only whose zero is true, one by distinct pairs."""
    added = [
        # the sum of the squares of a numeric column; 0 with no rows
        Aggregation("sum_squares", ColumnUse.NUMERIC, always(Kind.NUMBER), zero=0,
                    partials=lambda rows: {"": Partial((rows.values ** 2).sum(), "sum")},
                    final=lambda part: part("")),
        # true when no row is left (after `where` and the window); true with no rows
        Aggregation("quiet", ColumnUse.NONE, always(Kind.BOOL), zero=True,
                    partials=lambda rows: {"seen": Partial(rows.count(), "sum")},
                    final=lambda part: part("seen") == 0),
        # distinct values, like n_unique, by its own pass
        Aggregation("distinct", ColumnUse.ANY, always(Kind.NUMBER), zero=0,
                    dtype=pl.Int64(), distinct_pairs=True),
    ]
    for aggregation in added:
        register(aggregation)
    try:
        yield
    finally:
        for aggregation in added:
            unregister(aggregation.name)


def problems_of(text: str) -> list:
    with pytest.raises(RulesError) as info:
        parse_rules(textwrap.dedent(text), file="rules.yaml")
    return info.value.problems


# -- usage, and what each metric must give, worked out by hand ----------------------------------

USAGE = [  # customer, timestamp, event, minutes
    ("c1", "2026-10-30 09:00:00", "login", 2.0),
    ("c1", "2026-10-31 09:00:00", "login", 3.0),
    ("c1", "2026-10-31 10:00:00", "view", None),
    ("c1", "2026-10-10 09:00:00", "view", 4.0),   # outside a 7-day window
    ("c2", "2026-10-05 09:00:00", "login", 1.0),  # outside a 7-day window
    ("c2", "2026-11-01 23:00:00", "view", 5.0),
    ("c2", "2026-11-02 08:00:00", "login", 6.0),  # after the as-of date: never counted
    ("c9", "2026-10-30 09:00:00", "login", 7.0),  # not a customer
    ("c4", "2026-10-01 12:00:00", "view", None),  # rows, but none in a window or a `where`
]
METRICS = textwrap.dedent("""\
      squares: {agg: sum_squares, column: minutes}
      squares_7d: {agg: sum_squares, column: minutes, window_days: 7}
      login_squares: {agg: sum_squares, column: minutes, where: "event = 'login'"}
      squares_or_1: {agg: sum_squares, column: minutes, where: "event = 'nope'", default: 1}
      quiet_7d: {agg: quiet, window_days: 7}
      no_logins: {agg: quiet, where: "event = 'login'"}
      events: {agg: distinct, column: event}
      events_7d: {agg: distinct, column: event, window_days: 7}
    """)
# c3 has no usage: every metric's zero (or default)
EXPECTED: dict[str, dict[str, object]] = {
    "c1": {"squares": 29.0, "squares_7d": 13.0, "login_squares": 13.0, "squares_or_1": 1.0,
           "quiet_7d": False, "no_logins": False, "events": 2, "events_7d": 2},
    "c2": {"squares": 26.0, "squares_7d": 25.0, "login_squares": 1.0, "squares_or_1": 1.0,
           "quiet_7d": False, "no_logins": False, "events": 2, "events_7d": 1},
    "c3": {"squares": 0.0, "squares_7d": 0.0, "login_squares": 0.0, "squares_or_1": 1.0,
           "quiet_7d": True, "no_logins": True, "events": 0, "events_7d": 0},
    "c4": {"squares": 0.0, "squares_7d": 0.0, "login_squares": 0.0, "squares_or_1": 1.0,
           "quiet_7d": True, "no_logins": True, "events": 1, "events_7d": 0},
}
CUSTOMERS = list(EXPECTED)


def usage_file(tmp_path: Path) -> Path:
    rows = [{"customer_id": c, "timestamp": t, "event": e, "minutes": m} for c, t, e, m in USAGE]
    return write_csv(tmp_path / "usage.csv", rows)


def as_dict(values: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {row.pop("customer_id"): row for row in values.to_dicts()}


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_is_allowed_by_the_rules_model() -> None:
    rules = parse_rules(HEAD + textwrap.indent(METRICS, "  "))
    assert rules.metrics["squares"].agg == "sum_squares"
    assert rules.metrics["quiet_7d"].agg == "quiet"
    [p] = problems_of(HEAD + "  m: {agg: sum_squars, column: minutes}\n")
    assert p.path == "metrics.m.agg" and p.rule_id == "m" and p.line == 5
    assert p.message == f"'sum_squars' is not allowed here; expected {or_list(list(AGGREGATIONS))}"
    assert "'sum_squares'" in p.message and "'quiet'" in p.message
    assert p.hint == "did you mean 'sum_squares'?"


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_is_checked_for_its_column() -> None:
    problems = problems_of(HEAD + "  a: {agg: sum_squares}\n  b: {agg: quiet, column: event}\n"
                           "  c: {agg: distinct}\n")
    assert [(p.path, p.message) for p in problems] == [
        ("metrics.a", "`sum_squares` needs a `column`"),
        ("metrics.b.column", "`quiet` counts rows and takes no `column`"),
        ("metrics.c", "`distinct` needs a `column`"),
    ]


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_needs_a_numeric_column_when_it_says_so(
        tmp_path: Path) -> None:
    rules = parse_rules(HEAD + "  a: {agg: sum_squares, column: event}\n"
                        "  b: {agg: distinct, column: event}\n")
    usage = scan_usage([usage_file(tmp_path)], rules, pl.String)
    with pytest.raises(DataError) as info:
        compute_metrics(rules, usage, pl.DataFrame({"customer_id": ["c1"]}), AS_OF)
    [p] = info.value.problems
    assert p.message == "`sum_squares` needs a numeric column, but 'event' holds text"
    assert p.rule_id == "a"


@pytest.mark.usefixtures("test_aggregations")
@pytest.mark.parametrize("batch_rows", [None, 2, 3])
def test_a_registered_aggregation_is_computed_in_a_run(tmp_path: Path,
                                                       batch_rows: int | None) -> None:
    rules = parse_rules(HEAD + textwrap.indent(METRICS, "  "))
    usage = scan_usage([usage_file(tmp_path)], rules, pl.String)
    ids = pl.DataFrame({"customer_id": CUSTOMERS})
    result = compute_metrics(rules, usage, ids, AS_OF, batch_rows=batch_rows)
    assert as_dict(result.values) == EXPECTED
    assert result.kinds["squares"] == Kind.NUMBER and result.kinds["quiet_7d"] == Kind.BOOL
    assert result.values.schema["events"] == pl.Int64


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_reaches_the_customers_output(tmp_path: Path) -> None:
    rules = parse_rules(HEAD + textwrap.indent(METRICS, "  ")
                        + "derived:\n  heavy: \"squares > 20 AND NOT quiet_7d\"\n")
    customers = write_csv(tmp_path / "customers.csv",
                          [{"customer_id": c, "stage": "A"} for c in CUSTOMERS])
    result = run(rules, customers, [usage_file(tmp_path)], AS_OF)
    out = {row["customer_id"]: row for row in result.customers.to_dicts()}
    for customer, values in EXPECTED.items():
        assert {k: out[customer][k] for k in values} == values
    assert [out[c]["heavy"] for c in CUSTOMERS] == [True, True, False, False]


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_takes_its_zero_without_usage() -> None:
    rules = parse_rules(HEAD + textwrap.indent(METRICS, "  "))
    result = compute_metrics(rules, None, pl.DataFrame({"customer_id": ["c3"]}), AS_OF)
    assert as_dict(result.values) == {"c3": EXPECTED["c3"]}


@pytest.mark.usefixtures("test_aggregations")
def test_a_registered_aggregation_is_replayed_day_by_day_in_a_backfill(tmp_path: Path) -> None:
    rules = parse_rules(HEAD + textwrap.indent(METRICS, "  "))
    usage = scan_usage([usage_file(tmp_path)], rules, pl.String)
    ids = pl.DataFrame({"customer_id": CUSTOMERS})
    start = dt.date(2026, 9, 30)
    replay = MetricsReplay(rules, usage.frame.collect(), usage.schema, ids, start)
    assert replay.supported
    day = start
    while day <= dt.date(2026, 11, 3):
        got = replay.metrics(day)
        want = compute_metrics(rules, usage, ids, day)
        assert_frame_equal(got.values, want.values)
        if day == AS_OF:
            assert as_dict(got.values) == EXPECTED
        day += dt.timedelta(days=3 if day.day % 2 else 1)  # skipped days too


def test_a_removed_aggregation_is_refused_again() -> None:
    register(Aggregation("gone", ColumnUse.NONE, always(Kind.NUMBER), zero=0,
                         partials=lambda rows: {"": Partial(rows.count(), "sum")},
                         final=lambda part: part("")))
    try:
        parse_rules(HEAD + "  m: {agg: gone}\n")
        with pytest.raises(ValueError, match="already registered"):
            register(AGGREGATIONS["gone"])
    finally:
        unregister("gone")
    [p] = problems_of(HEAD + "  m: {agg: gone}\n")
    assert p.message.startswith("'gone' is not allowed here")


def test_an_aggregation_is_computed_one_way() -> None:
    with pytest.raises(ValueError, match="partials and final, or distinct_pairs"):
        Aggregation("both", ColumnUse.ANY, always(Kind.NUMBER), zero=0,
                    partials=lambda rows: {}, final=lambda part: pl.lit(1),
                    distinct_pairs=True)


# -- the docs ---------------------------------------------------------------------------------

RULES_MD = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The cells of each row of the table whose header line is ``header``."""
    lines = markdown[markdown.index(header + "\n"):].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_docs_table_of_aggregations_is_the_registry() -> None:
    """docs/rules.md's table of `agg` values: one row per aggregation (or a few sharing one),
    with what it asks of `column` and its value with no rows."""
    column_words = {ColumnUse.NONE: "none", ColumnUse.ANY: "any",
                    ColumnUse.NUMERIC: "numeric or true/false"}
    zero_words = [(0, "`0`"), (False, "`false`"), (None, "NULL")]
    documented = {}
    for aggs, column, _value, no_rows in table_rows(
            RULES_MD, "| `agg` | `column` | value | no rows |"):
        for name in re.findall(r"`(\w+)`", aggs):
            documented[name] = (column, no_rows)
    assert set(documented) == set(AGGREGATIONS)
    for name, agg in AGGREGATIONS.items():
        zero = next(word for value, word in zero_words
                    if value == agg.zero and type(value) is type(agg.zero))
        assert documented[name] == (column_words[agg.column], zero), name


def test_docs_name_every_aggregation_where_they_list_them() -> None:
    # the `agg` key in the metrics' table of keys, the `column` key, the validate example:
    # in the registry's order, the order of the "not allowed here" message
    names = ", ".join(f"`{n}`" for n in aggregations.names())
    assert f"| `agg` | one of {names} | required |" in RULES_MD
    without = [f"`{n}`" for n, a in AGGREGATIONS.items() if not a.takes_column]
    assert f"Required for every `agg` except {' and '.join(without)}, which take none" in RULES_MD
    assert f"expected {or_list(aggregations.names())}" in RULES_MD


# what the registry may import: the rules model imports it, so not the rules, nor the
# packages above them (engine, day, jobs, state, check, report)
LEAVES = {"lifecycle_cli.columns", "lifecycle_cli.expressions", "lifecycle_cli.errors",
          "lifecycle_cli.suggest", "lifecycle_cli.models"}


def test_aggregations_module_imports_only_leaves() -> None:
    path = ROOT / "lifecycle_cli" / "metrics" / "aggregations.py"
    ours = {m for m in runtime_imports(path) if m.startswith("lifecycle_cli")}
    assert ours <= LEAVES


def test_aggregations_module_imports_first_in_a_fresh_interpreter() -> None:
    code = ("import lifecycle_cli.metrics.aggregations as a, lifecycle_cli.rules.model as m; "
            "assert m.Metric(agg='count').agg == 'count'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
