"""Visits (`lifecycle_cli.day.visits`): the visits table, the totals a state keeps and the
customers output's history columns, worked out by hand; and the visits a state gives equal
the ones the report's time in stage counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from conftest import write_csv
from report_util import build_state

from lifecycle_cli import StateView, parse_rules, run
from lifecycle_cli.columns import MOVES_SCHEMA, OVERRIDE_SCHEMA
from lifecycle_cli.day.visits import add_totals, last_moves, moves_from, totals_of, visits
from lifecycle_cli.report.build import _visits, build_report, history_from_state
from lifecycle_cli.rules.load import load_rules

D = dt.date
CURRENT = {"customer_id": pl.String, "stage": pl.String, "stage_entered_at": pl.Date,
           "last_seen": pl.Date}


def moves(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=MOVES_SCHEMA, orient="row")


def current(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=CURRENT, orient="row")


MOVES = moves(
    (D(2026, 1, 5), "c1", None, "A", "initial", 0, None),
    (D(2026, 1, 9), "c1", "A", "B", "ab", 1, 4),
    (D(2026, 1, 9), "c1", "B", "C", "bc", 2, 0),  # through B within one run: a 0-day visit
    (D(2026, 1, 20), "c1", "C", "A", "(by hand)", -1, 11),
    (D(2026, 1, 12), "c2", "B", "C", "bc", 1, 30),  # B began before the history
    (D(2026, 1, 15), "c3", "A", "B", "ab", 1, None),  # A began on an unknown day
)
NOW = current(
    ("c1", "A", D(2026, 1, 20), D(2026, 1, 31)),
    ("c2", "C", D(2026, 1, 12), D(2026, 1, 25)),  # last in the export on the 25th
    ("c3", "B", D(2026, 1, 15), D(2026, 1, 31)),
    ("c4", "A", None, D(2026, 1, 31)),  # a stage without a date: days unknown
)


def test_each_visit_with_its_dates_days_and_the_rules_that_began_and_ended_it() -> None:
    table = visits(MOVES, NOW, D(2026, 1, 31))
    assert table.columns == ["customer_id", "stage", "entered", "exited", "days", "rule_in",
                             "rule_out"]
    assert table.rows() == [
        ("c1", "A", D(2026, 1, 5), D(2026, 1, 9), 4, "initial", "ab"),
        ("c1", "B", D(2026, 1, 9), D(2026, 1, 9), 0, "ab", "bc"),
        ("c1", "C", D(2026, 1, 9), D(2026, 1, 20), 11, "bc", "(by hand)"),
        ("c1", "A", D(2026, 1, 20), None, 11, "(by hand)", None),
        ("c2", "B", D(2025, 12, 13), D(2026, 1, 12), 30, None, "bc"),
        ("c2", "C", D(2026, 1, 12), None, 13, "bc", None),  # until its last export
        ("c3", "A", None, D(2026, 1, 15), None, None, "ab"),
        ("c3", "B", D(2026, 1, 15), None, 16, "ab", None),
        ("c4", "A", None, None, None, None, None),
    ]


def test_a_period_keeps_the_visits_in_progress_in_it_and_knows_how_they_began() -> None:
    period = MOVES.filter(pl.col("as_of") >= D(2026, 1, 10))
    earlier = last_moves(MOVES.filter(pl.col("as_of") < D(2026, 1, 10)))
    now = NOW.with_columns(pl.when(pl.col("customer_id") == "c2").then(D(2026, 1, 8))
                           .otherwise(pl.col("last_seen")).alias("last_seen"))
    table = visits(period, now, D(2026, 1, 31), start=D(2026, 1, 10), before=earlier)
    assert table.select("customer_id", "stage", "rule_in", "rule_out").rows() == [
        ("c1", "C", "bc", "(by hand)"),  # began before the period, by bc
        ("c1", "A", "(by hand)", None),
        ("c2", "B", None, "bc"),  # c2 left the exports on the 8th: C is never seen
        ("c3", "A", None, "ab"),
        ("c3", "B", "ab", None),
        ("c4", "A", None, None),
    ]
    # without the earlier moves, the rule that began c1's C visit is unknown
    alone = visits(period, now, D(2026, 1, 31), start=D(2026, 1, 10))
    assert alone.filter(pl.col("stage") == "C")["rule_in"].to_list() == [None]


def test_totals_add_up_ended_visits_and_a_day_adds_its_own_to_the_day_before() -> None:
    totals = totals_of(MOVES)
    assert totals.sort("customer_id", "stage").rows() == [
        ("c1", "A", 1, 4, D(2026, 1, 5)),
        ("c1", "B", 1, 0, D(2026, 1, 9)),
        ("c1", "C", 1, 11, D(2026, 1, 9)),
        ("c2", "B", 1, 30, D(2025, 12, 13)),
        ("c3", "A", 1, 0, None),  # a visit of unknown length counts, its days don't
    ]
    later = moves((D(2026, 2, 3), "c1", "A", "B", "ab", 1, 14),
                  (D(2026, 2, 3), "c5", "B", "C", "bc", 1, 2))  # c5's first visit to B
    added = add_totals(totals, later)
    assert added.rows() == [  # the day before's rows in their order, then the new ones
        ("c1", "A", 2, 18, D(2026, 1, 20)),
        ("c1", "B", 1, 0, D(2026, 1, 9)),
        ("c1", "C", 1, 11, D(2026, 1, 9)),
        ("c2", "B", 1, 30, D(2025, 12, 13)),
        ("c3", "A", 1, 0, None),
        ("c5", "B", 1, 2, D(2026, 2, 1)),
    ]
    rebuilt = add_totals(None, pl.concat([MOVES, later]))
    assert added.sort("customer_id", "stage").equals(rebuilt.sort("customer_id", "stage"))


def test_hand_edits_are_moves_and_a_date_edited_alone_is_not() -> None:
    overrides = pl.DataFrame([
        (D(2026, 1, 20), "c1", "C", D(2026, 1, 9), "A", D(2026, 1, 20), "export"),
        (D(2026, 1, 21), "c2", "C", D(2026, 1, 12), "C", D(2026, 1, 2), "export"),
        (D(2026, 1, 22), "c3", "B", D(2026, 1, 15), "A", None, "state"),  # the state kept
    ], schema=OVERRIDE_SCHEMA, orient="row")
    found = moves_from(MOVES.filter(pl.col("rule_id") != "(by hand)"), overrides)
    assert found.equals(MOVES.sort("as_of", "customer_id", "hop"))


# -- through the real runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_state(tmp_path_factory.mktemp("visits"))


@pytest.mark.parametrize("start", [None, D(2026, 11, 2), D(2026, 12, 15)])
def test_the_visits_a_state_gives_are_those_the_time_in_stage_counts(
        state: Path, start: dt.date | None) -> None:
    """The report's visits table, StateView.visits and the visits behind Kaplan-Meier are
    the same visits: the ones whose days are known, less those passed through in a run
    (they ended the day they began), which time in stage counts apart."""
    from cli_util import RULES

    history = history_from_state(state, load_rules(RULES), start)
    report = build_report(history)
    assert report.visits is not None
    assert report.visits.equals(StateView.open(state).visits(start))
    known = report.visits.filter(pl.col("days") >= 0).select(
        "customer_id", "stage", "entered", "days", pl.col("exited").is_not_null().alias("left"))
    counted, _, passed = _visits(history)
    key = ["customer_id", "stage", "entered", "days", "left"]
    spent = known.filter(~(pl.col("left") & (pl.col("days") == 0)))
    assert spent.sort(key).equals(counted.select(key).sort(key))
    assert known.height - spent.height == passed["passed_through"].sum()
    assert report.time_in_stage["visits"].sum() == spent.height


RULES_TEXT = """
version: 1
stages: [{name: Trial}, {name: Paid}, {name: At Risk}, {name: Gone, terminal: true}]
initial_stage: Trial
history_columns: true
transitions:
  - {id: paid, from: Trial, to: Paid, when: "plan = 'paid'"}
  - {id: risk, from: Paid, to: At Risk, when: "health < 40"}
  - {id: saved, from: At Risk, to: Paid, when: "health >= 40"}
"""


def test_history_columns_count_every_visit_across_nightly_runs(tmp_path: Path) -> None:
    """One customer, four nights: Trial (new) -> Paid on the 3rd -> At Risk on the 5th ->
    Paid on the 6th, and a hand edit back to Trial on the 8th."""
    rules = parse_rules(RULES_TEXT)
    state = tmp_path / "state"
    nights = [
        (D(2026, 3, 1), {"plan": "trial", "health": 80}),
        (D(2026, 3, 3), {"plan": "paid", "health": 80}),
        (D(2026, 3, 5), {"plan": "paid", "health": 30}),
        (D(2026, 3, 6), {"plan": "paid", "health": 60}),
    ]
    for day, values in nights:
        crm = write_csv(tmp_path / f"crm-{day}.csv", [{"customer_id": "K1", **values}])
        result = run(rules, crm, [], day, state=state)
    out = result.customers.row(0, named=True)
    assert [c for c in result.customers.columns if "_total" in c or "last_" in c] == [
        "days_in_trial_total", "last_entered_trial", "days_in_paid_total", "last_entered_paid",
        "days_in_at_risk_total", "last_entered_at_risk", "days_in_gone_total",
        "last_entered_gone"]
    assert (out["days_in_trial_total"], out["last_entered_trial"]) == (2, D(2026, 3, 1))
    assert (out["days_in_paid_total"], out["last_entered_paid"]) == (2, D(2026, 3, 6))
    assert (out["days_in_at_risk_total"], out["last_entered_at_risk"]) == (1, D(2026, 3, 5))
    assert (out["days_in_gone_total"], out["last_entered_gone"]) == (0, None)
    # the CRM puts K1 back in Trial by hand on the 8th: Paid's second visit ends (2 days)
    crm = write_csv(tmp_path / "crm-edit.csv", [
        {"customer_id": "K1", "plan": "trial", "health": 60, "stage": "Trial"}])
    result = run(rules, crm, [], D(2026, 3, 8), state=state)
    out = result.customers.row(0, named=True)
    assert (out["days_in_trial_total"], out["last_entered_trial"]) == (2, D(2026, 3, 8))
    assert out["days_in_paid_total"] == 4
    view = StateView.open(state)
    assert view.table("totals", D(2026, 3, 8)).sort("stage").rows() == [
        ("K1", "At Risk", 1, 1, D(2026, 3, 5)),
        ("K1", "Paid", 2, 4, D(2026, 3, 6)),
        ("K1", "Trial", 1, 2, D(2026, 3, 1)),
    ]
    # yesterday's output as today's input: the history columns are computed again
    again = tmp_path / "again.csv"
    result.customers.write_csv(again)
    assert run(rules, again, [], D(2026, 3, 9), state=state).customers.row(
        0, named=True)["days_in_trial_total"] == 3


def test_history_columns_of_one_run_count_its_own_visits(tmp_path: Path) -> None:
    from lifecycle_cli.day.load import load
    from lifecycle_cli.day.pipeline import run_day

    rules = parse_rules(RULES_TEXT)
    crm = write_csv(tmp_path / "crm.csv", [
        {"customer_id": "K1", "plan": "paid", "health": 30, "stage": "Trial",
         "stage_entered_at": D(2026, 2, 20)},
        {"customer_id": "K2", "plan": "trial", "health": 30, "stage": "", "stage_entered_at": ""},
    ])
    day = run_day(rules, load(rules, crm), D(2026, 3, 1))
    rows = {r["customer_id"]: r for r in day.customers.iter_rows(named=True)}
    # K1: 9 days in Trial, then Paid and At Risk the same day
    assert (rows["K1"]["days_in_trial_total"], rows["K1"]["last_entered_trial"]) == (
        9, D(2026, 2, 20))
    assert (rows["K1"]["days_in_paid_total"], rows["K1"]["last_entered_paid"]) == (
        0, D(2026, 3, 1))
    assert rows["K1"]["stage"] == "At Risk"
    assert (rows["K2"]["days_in_trial_total"], rows["K2"]["last_entered_trial"]) == (
        0, D(2026, 3, 1))


def test_turning_history_columns_on_later_rebuilds_the_totals_from_the_history(
        tmp_path: Path) -> None:
    without = parse_rules(RULES_TEXT.replace("history_columns: true", ""))
    rules = parse_rules(RULES_TEXT)
    state = tmp_path / "state"
    for day, plan in ((D(2026, 3, 1), "trial"), (D(2026, 3, 4), "paid")):
        crm = write_csv(tmp_path / f"{day}.csv", [{"customer_id": "K1", "plan": plan,
                                                  "health": 80}])
        run(without, crm, [], day, state=state)
    assert StateView.open(state).table("totals", D(2026, 3, 4)) is None
    result = run(rules, crm, [], D(2026, 3, 10), state=state)
    out = result.customers.row(0, named=True)
    assert (out["days_in_trial_total"], out["days_in_paid_total"]) == (3, 6)


def test_history_column_names_must_differ() -> None:
    from lifecycle_cli.errors import RulesError

    with pytest.raises(RulesError) as info:
        parse_rules("""
version: 1
stages: [{name: At Risk}, {name: at-risk}, {name: "!!"}]
initial_stage: At Risk
history_columns: true
derived: {days_in_at_risk_total: "1"}
""")
    text = str(info.value)
    assert "the stages 'At Risk' and 'at-risk' give the same column names" in text
    assert "the stage '!!' gives no column name" in text
    assert "'days_in_at_risk_total' is a column that history_columns adds" in text
