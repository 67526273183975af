"""Report tables: a hand-made history with answers worked out by hand, CTA counts, and
golden tables for a state built by the real command."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from golden_util import assert_golden
from report_util import build_state

from lifecycle_cli.errors import DataError, OptionError
from lifecycle_cli.report.build import (
    MOVES_SCHEMA,
    History,
    _stuck_factor,
    build_report,
    cta_table,
    history_from_state,
)
from lifecycle_cli.rules.load import load_rules, parse_rules
from lifecycle_cli.rules.model import ReportSettings
from lifecycle_cli.state.store import StateError

D = dt.date
START, END = D(2026, 1, 1), D(2026, 1, 31)

RULES = parse_rules("""
version: 1
name: Hand-made
stages:
  - {name: A, expected_days: 10}
  - {name: B, expected_days: 5}
  - {name: C}
  - {name: D, terminal: true}
initial_stage: A
""")


def hand_history(**changes: object) -> History:
    """Five customers over January 2026; every number below is worked out by hand."""
    current = pl.DataFrame(
        [
            ("c1", "B", D(2026, 1, 20), END),  # 11 days in B (expected 5): overdue and stuck
            ("c2", "A", D(2026, 1, 25), END),  # 6 days in A (expected 10)
            ("c3", "A", D(2025, 12, 1), END),  # 61 days in A: overdue and stuck
            ("c4", "C", None, END),  # start unknown
            ("c5", "B", D(2026, 1, 29), END),  # 2 days in B
        ],
        schema={"customer_id": pl.String, "stage": pl.String, "stage_entered_at": pl.Date,
                "last_seen": pl.Date},
        orient="row",
    )
    moves = pl.DataFrame(
        [
            (D(2026, 1, 5), "c1", None, "A", "initial", 0, None),
            (D(2026, 1, 10), "c5", None, "A", "initial", 0, None),
            (D(2026, 1, 15), "c4", "B", "C", "to_c", 1, 7),
            (D(2026, 1, 20), "c1", "A", "B", "to_b", 1, 15),
            (D(2026, 1, 25), "c2", None, "A", "initial", 0, None),
            (D(2026, 1, 29), "c5", "A", "B", "to_b", 1, 19),
        ],
        schema=MOVES_SCHEMA,
        orient="row",
    )
    attributes = pl.DataFrame({
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "name": ["One", "Two", "Three", "Four", "Five"],
        "csm": ["Ann", "Bob", "Ann", None, "Cy"],
        "arr": [100, 50, 30, 20, 40],
    })
    fields = dict(rules=RULES, start=START, end=END, current=current, moves=moves,
                  attributes=attributes, source="hand", runs=31)
    fields.update(changes)
    return History(**fields)  # type: ignore[arg-type]


def test_distribution_counts_customers_value_overdue_and_stuck() -> None:
    report = build_report(hand_history())
    assert (report.value_column, report.owner_column, report.name_column) == ("arr", "csm", "name")
    assert report.distribution.rows() == [
        # stage, customers, share, arr, arr share, overdue, stuck
        ("A", 2, 0.4, 80, 0.3333, 1, 1),
        ("B", 2, 0.4, 140, 0.5833, 1, 1),
        ("C", 1, 0.2, 20, 0.0833, 0, 0),
        ("D", 0, 0.0, 0, 0.0, 0, 0),
    ]


def test_flows_matrix_and_funnel() -> None:
    report = build_report(hand_history())
    assert report.flows.rows() == [
        ("(new)", "A", 3, 0, 3), ("A", "B", 2, 0, 2), ("B", "C", 1, 0, 1)]
    assert report.flow_matrix.columns == ["from_stage", "A", "B", "C", "D", "total"]
    assert report.flow_matrix.rows()[:3] == [
        ("(new)", 3, 0, 0, 0, 3), ("A", 0, 2, 0, 0, 2), ("B", 0, 0, 1, 0, 1)]
    # the main path: the stages before the terminal D. Of the customers in a stage at any
    # time in January, how many moved straight on; C ends the path: no conversion
    assert report.main_path == ["A", "B", "C"]
    assert report.funnel.rows() == [
        # stage, next, customers, to next, conversion, elsewhere on the path, outflow, still in
        ("A", "B", 4, 2, 0.5, 0, 0, 2),
        ("B", "C", 3, 1, 0.3333, 0, 0, 2),
        ("C", None, 1, None, None, 0, 0, 1),
    ]
    assert report.funnel_outflows.height == 0


def test_the_funnel_follows_the_rules_main_path_and_shows_outflows() -> None:
    rules = RULES.model_copy(update={"report": ReportSettings(main_path=["A", "B"])})
    report = build_report(hand_history(rules=rules))
    assert report.main_path == ["A", "B"]
    assert report.funnel.rows() == [
        ("A", "B", 4, 2, 0.5, 0, 0, 2),
        ("B", None, 3, None, None, 0, 1, 2),  # c4 went on to C, off the path: an outflow
    ]
    assert report.funnel_outflows.rows() == [("B", "C", 1, 0.3333)]
    # back on the path is not an outflow: c1 back from B to A
    moves = hand_history().moves.vstack(pl.DataFrame(
        [(D(2026, 1, 30), "c1", "B", "A", "back", 1, 10)], schema=MOVES_SCHEMA, orient="row"))
    report = build_report(hand_history(rules=rules, moves=moves))
    assert report.funnel.row(1) == ("B", None, 3, None, None, 1, 1, 2)
    about = dict(report.about.rows())
    assert about["main_path"] == "A, B"
    assert "outflows (funnel_outflows), not conversion" in about["note_main_path"]
    assert "The funnel counts customers" in about["note_funnel"]


def test_a_main_path_of_fewer_than_two_stages_leaves_the_funnel_empty() -> None:
    rules = parse_rules(
        "version: 1\nstages: [{name: A}, {name: Z, terminal: true}]\ninitial_stage: A\n")
    history = hand_history(rules=rules, current=hand_history().current.head(0),
                           moves=hand_history().moves.head(0))
    report = build_report(history)
    assert report.main_path == [] and report.funnel.height == 0
    assert any("set report: {main_path: [...]}" in w for w in report.warnings)


def test_time_in_stage_is_kaplan_meier_with_open_visits_censored() -> None:
    report = build_report(hand_history(), min_exits=1)
    # A: c1 left after 15 days, c5 after 19; c2 is in A since 6 days (censored); c3 entered
    # before the period, so it is at risk only from day 31 of its visit (censored at 61).
    # Day 6: 3 at risk, c2 censored. Day 15: 2 at risk, 1 left: S = 1/2 (the median).
    # Day 19: 1 at risk, 1 left: S = 0 (p90). Day 61: c3 alone, censored.
    # B: c4 left after 7 days; c1 (11) and c5 (2) are still in it: S(7) = 1/2.
    # C: c4's start is unknown: skipped.
    assert report.time_in_stage.rows() == [
        # stage, expected, visits, left, median, p90, over expected, still in,
        # passed through, skipped, note
        ("A", 10, 4, 2, 15, 19, 1.0, 2, 0, 0, ""),
        ("B", 5, 3, 1, 7, None, 1.0, 2, 0, 0, "p90 not reached"),
        ("C", None, 0, 0, None, None, None, 0, 0, 1, "no visits"),
        ("D", None, 0, 0, None, None, None, 0, 0, 0, "no visits"),
    ]
    assert report.skipped_visits == 1
    curve_a = report.survival.filter(pl.col("stage") == "A")
    assert curve_a.select("days", "at_risk", "left", "censored", "survival").rows() == [
        (6, 3, 0, 1, 1.0), (15, 2, 1, 0, 0.5), (19, 1, 1, 0, 0.0), (61, 1, 0, 1, 0.0)]


def test_thin_data_shows_no_median_below_the_minimum_of_exits() -> None:
    # the rules' default: 10 exits; A has 2, B 1
    report = build_report(hand_history())
    assert report.min_exits == 10
    assert report.time_in_stage.select(
        "stage", "visits", "left", "median_days", "p90_days", "over_expected", "note").rows() == [
        ("A", 4, 2, None, None, None, "too few exits (2 < 10)"),
        ("B", 3, 1, None, None, None, "too few exits (1 < 10)"),
        ("C", 0, 0, None, None, None, "no visits"),
        ("D", 0, 0, None, None, None, "no visits"),
    ]
    # two exits are enough for A when the rules say so; nobody left B before day 5, yet
    # with one exit B's over_expected (100%) is as thin as its median
    rules = RULES.model_copy(update={"report": ReportSettings(min_exits=2)})
    table = build_report(hand_history(rules=rules)).time_in_stage
    assert table.select("median_days", "p90_days", "over_expected").rows()[:2] == [
        (15, 19, 1.0), (None, None, None)]
    assert "at least 10 visits that ended" in dict(report.about.rows())["note_min_exits"]
    with pytest.raises(OptionError, match="at least 1"):
        build_report(hand_history(), min_exits=0)


def test_over_expected_is_empty_for_a_stage_nobody_left() -> None:
    history = hand_history()
    history.moves = history.moves.filter(pl.col("from_stage") != "B")  # c4 never left B
    history.current = history.current.with_columns(
        pl.when(pl.col("customer_id") == "c4").then(pl.lit("B")).otherwise(pl.col("stage"))
        .alias("stage"),
        pl.when(pl.col("customer_id") == "c4").then(pl.lit(D(2026, 1, 8)))
        .otherwise(pl.col("stage_entered_at")).alias("stage_entered_at"))
    row = build_report(history, min_exits=1).time_in_stage.row(1, named=True)
    assert (row["stage"], row["visits"], row["left"]) == ("B", 3, 0)
    assert (row["median_days"], row["over_expected"], row["note"]) == (None, None,
                                                                      "nobody left yet")


def test_visits_passed_through_in_one_run_are_not_time_in_stage() -> None:
    """c6 gets its first stage on 12 January and hops A -> B -> C in that run: its A and B
    visits lasted no time. Counted as 0-day visits they would drop A's curve on day 0."""
    history = hand_history()
    history.moves = history.moves.vstack(pl.DataFrame(
        [
            (D(2026, 1, 12), "c6", None, "A", "initial", 0, None),
            (D(2026, 1, 12), "c6", "A", "B", "to_b", 1, 0),
            (D(2026, 1, 12), "c6", "B", "C", "to_c", 2, 0),
        ],
        schema=MOVES_SCHEMA, orient="row")).sort("as_of", "customer_id", "hop")
    history.current = history.current.vstack(pl.DataFrame(
        [("c6", "C", D(2026, 1, 12), END)], schema=history.current.schema, orient="row"))
    report = build_report(history, min_exits=1)
    table = report.time_in_stage.select("stage", "visits", "left", "median_days",
                                        "passed_through")
    assert table.rows() == [
        ("A", 4, 2, 15, 1),  # as without c6
        ("B", 3, 1, 7, 1),
        ("C", 1, 0, None, 0),  # c6 is in C since 19 days (c4's start is unknown)
        ("D", 0, 0, None, 0),
    ]
    assert report.passed_through == 2
    assert report.survival.filter(pl.col("days") == 0).height == 0
    assert dict(report.about.rows())["visits_passed_through"] == "2"
    # in the funnel the hops are conversions: c6 went from A to B and on to C
    assert report.funnel.select("stage", "customers", "to_next").rows() == [
        ("A", 5, 3), ("B", 4, 2), ("C", 2, None)]


def test_overdue_by_stage_and_owner_and_the_customers() -> None:
    report = build_report(hand_history())
    assert report.overdue.rows() == [
        # stage, owner, customers, overdue, share, stuck, most days, arr overdue
        ("A", "Ann", 1, 1, 1.0, 1, 61, 30),
        ("A", "Bob", 1, 0, 0.0, 0, None, 0),
        ("B", "Ann", 1, 1, 1.0, 1, 11, 100),
        ("B", "Cy", 1, 0, 0.0, 0, None, 0),
    ]
    assert report.overdue_customers.select(
        "customer_id", "name", "stage", "owner", "arr", "days_in_stage", "times_expected",
        "stuck").rows() == [
        ("c3", "Three", "A", "Ann", 30, 61, 6.1, True),
        ("c1", "One", "B", "Ann", 100, 11, 2.2, True),
    ]


def test_one_owner_rule_for_the_overdue_tables_and_the_ctas() -> None:
    """Where the owner column is empty or blank, the rules' default_owner, as CTAs have it;
    "(no owner)" only when the rules have none."""
    from lifecycle_cli.ctas import decide
    from lifecycle_cli.engine import builtins

    assert decide.owner_of is builtins.owner  # the CTAs' owners come from the same rule
    history = hand_history()
    history.attributes = history.attributes.with_columns(
        pl.Series("csm", ["  Ann ", "Bob", "", None, "Cy"]))
    rules = RULES.model_copy(update={"default_owner": "CS Ops"})
    report = build_report(hand_history(rules=rules, attributes=history.attributes))
    assert report.overdue.select("stage", "owner", "overdue").rows() == [
        ("A", "Bob", 0), ("A", "CS Ops", 1), ("B", "Ann", 1), ("B", "Cy", 0)]
    assert report.overdue_customers.select("customer_id", "owner").rows() == [
        ("c3", "CS Ops"), ("c1", "Ann")]
    cta_owners = pl.DataFrame({"csm": ["  Ann ", "", None]}).select(
        builtins.owner("csm", "CS Ops").alias("owner"))["owner"].to_list()
    assert cta_owners == ["Ann", "CS Ops", "CS Ops"]
    report = build_report(hand_history(attributes=history.attributes))  # no default_owner
    assert set(report.overdue["owner"]) == {"Ann", "Bob", "(no owner)", "Cy"}


def test_a_higher_stuck_factor_and_other_columns() -> None:
    report = build_report(hand_history(), stuck_factor=3, owner="name", value="arr")
    assert report.distribution["stuck"].to_list() == [1, 0, 0, 0]  # 11 days is not 3 x 5
    assert report.overdue["owner"].to_list() == ["Three", "Two", "Five", "One"]
    with pytest.raises(OptionError, match="--value revenue: the customers export has no such"):
        build_report(hand_history(), value="revenue")
    with pytest.raises(DataError, match="'name' holds text, not numbers"):
        build_report(hand_history(), value="name")
    with pytest.raises(OptionError, match="at least 1"):
        build_report(hand_history(), stuck_factor=0.5)


def test_the_stuck_factor_comes_from_the_rules_compliance_section() -> None:
    assert _stuck_factor(RULES, None) == 2.0
    assert _stuck_factor(SimpleNamespace(compliance=SimpleNamespace(stuck_factor=3)),
                         None) == 3.0  # type: ignore[arg-type]
    assert _stuck_factor(SimpleNamespace(compliance=SimpleNamespace(stuck_factor=3)),
                         1.5) == 1.5  # type: ignore[arg-type]


def test_without_attributes_there_is_no_owner_or_value() -> None:
    report = build_report(hand_history(attributes=None))
    assert report.value_column is None and report.owner_column is None
    assert report.distribution.columns == ["stage", "customers", "share", "overdue", "stuck"]
    assert set(report.overdue["owner"]) == {"(no owner)"}
    with pytest.raises(OptionError, match="needs the customers export"):
        build_report(hand_history(attributes=None), value="arr")


def test_customers_gone_from_the_exports_are_censored_at_their_last_export() -> None:
    history = hand_history()
    history.current = history.current.with_columns(
        pl.when(pl.col("customer_id") == "c2").then(pl.lit(D(2026, 1, 28)))
        .otherwise(pl.col("last_seen")).alias("last_seen"))
    curve_a = build_report(history).survival.filter(pl.col("stage") == "A")
    assert curve_a["days"].to_list() == [3, 15, 19, 61]  # c2: 3 days, not 6


CTAS = pl.DataFrame(
    [
        # as_of, cta, customer, type, owner, created, due, status, closed
        (D(2025, 12, 20), "X2", "c3", "Risk", "Ann", D(2025, 12, 20), D(2025, 12, 27), "open",
         None),
        (D(2026, 1, 2), "X1", "c1", "Risk", "Ann", D(2026, 1, 2), D(2026, 1, 5), "open", None),
        (D(2026, 1, 6), "X1", "c1", "Risk", "Ann", D(2026, 1, 2), D(2026, 1, 5), "closed",
         D(2026, 1, 6)),
        (D(2026, 1, 10), "X3", "c2", "Lifecycle", None, D(2026, 1, 10), D(2026, 2, 10), "open",
         None),
        (D(2026, 2, 5), "X3", "c2", "Lifecycle", None, D(2026, 1, 10), D(2026, 2, 10),
         "closed", D(2026, 2, 5)),  # after the period: X3 is open at its end
        (D(2026, 1, 20), "X4", "c5", "Risk", "Bob", D(2026, 1, 20), D(2026, 1, 25), "open",
         None),
        (D(2026, 1, 22), "X4", "c5", "Risk", "Bob", D(2026, 1, 20), D(2026, 1, 25), "closed",
         D(2026, 1, 22)),
    ],
    schema={"as_of": pl.Date, "cta_id": pl.String, "customer_id": pl.String,
            "type": pl.String, "owner": pl.String, "created_on": pl.Date, "due_on": pl.Date,
            "status": pl.String, "closed_on": pl.Date},
    orient="row",
)


def test_ctas_created_closed_and_open_by_type_and_owner() -> None:
    table = cta_table(CTAS, START, END)
    assert table is not None
    assert table.rows() == [
        # type, owner, created, closed, open, past due
        ("Lifecycle", "(no owner)", 1, 0, 1, 0),
        ("Risk", "Ann", 1, 1, 1, 1),  # X1 made and closed; X2 from December, open, late
        ("Risk", "Bob", 1, 1, 0, 0),
    ]
    assert cta_table(None, START, END) is None
    empty = cta_table(pl.DataFrame(), START, END)
    assert empty is not None and empty.height == 0
    with pytest.raises(DataError, match="lack the column"):
        cta_table(CTAS.drop("status"), START, END)


def test_a_history_with_ctas_has_a_cta_table_in_every_output() -> None:
    from rich.console import Console

    from lifecycle_cli.cli.render import report_tables
    from lifecycle_cli.render.html import render_html

    report = build_report(hand_history(ctas=CTAS))
    assert list(report.tables)[-1] == "ctas"
    assert report.ctas is not None and report.ctas.height == 3
    assert "ctas" not in build_report(hand_history()).tables
    page = render_html(report)
    assert "<th class=\"n\">past_due</th>" in page and "(no owner)" in page
    console = Console(record=True, width=120)
    report_tables(console, report)
    assert "CTAs 2026-01-01 to 2026-01-31 by type and owner" in console.export_text()


def test_the_report_counts_the_state_s_ctas(state: Path) -> None:
    """Created, closed and open by type and owner agree with the state's CTA events."""
    from cli_util import RULES

    from lifecycle_cli.ctas.decide import current
    from lifecycle_cli.state.view import StateView

    rules = load_rules(RULES)
    events = StateView.open(state).history("ctas")
    history = history_from_state(state, rules)
    assert history.ctas is not None  # each CTA's latest row: here, each CTA's only event
    assert history.ctas.select(events.columns).sort("cta_id").equals(events.sort("cta_id"))
    report = build_report(history)
    assert report.ctas is not None and "ctas" in report.tables
    totals = report.ctas.select(pl.col("created", "closed", "open").sum()).row(0)
    now = current(events)
    assert totals == (events.filter(pl.col("status") == "open").height,
                      events.filter(pl.col("status") == "closed").height,
                      now.filter(pl.col("status") == "open").height)
    # 0003, changed by hand to Will Churn on day 2 and saved back to Adopting that run, is on
    # a new Adopting visit: its CTA names that visit
    assert now.filter(pl.col("customer_id") == "0003")["cta_id"].to_list() == [
        "gone_quiet:0003:Adopting:2026-11-02"]
    # rules without CTAs: no CTA section
    no_ctas = rules.model_copy(update={"ctas": []})
    assert history_from_state(state, no_ctas).ctas is None


# -- a state built by the real command ------------------------------------------------------


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_state(tmp_path_factory.mktemp("report"))


@pytest.mark.parametrize("name", ["about", "distribution", "flows", "flow_matrix", "funnel",
                                  "funnel_outflows", "time_in_stage", "survival", "overdue",
                                  "overdue_customers", "ctas", "visits"])
def test_golden_tables_for_a_fixed_state(state: Path, name: str, tmp_path: Path) -> None:
    from cli_util import DATA, RULES

    history = history_from_state(state, load_rules(RULES), customers=DATA / "customers.csv")
    report = build_report(history)
    produced = tmp_path / f"{name}.csv"
    table = report.tables[name]
    if name == "about":  # the state's path differs from run to run
        table = table.filter(pl.col("item") != "source")
    table.write_csv(produced)
    assert_golden(produced, f"report/{name}.csv")


def test_golden_time_in_stage_with_one_exit_enough(state: Path, tmp_path: Path) -> None:
    """The fixture's state is too small for the default 10 exits: its medians, with 1."""
    from cli_util import DATA, RULES

    history = history_from_state(state, load_rules(RULES), customers=DATA / "customers.csv")
    produced = tmp_path / "time_in_stage.csv"
    build_report(history, min_exits=1).time_in_stage.write_csv(produced)
    assert_golden(produced, "report/time_in_stage-min-exits-1.csv")


def test_the_period_ends_on_the_states_last_run_before_to(state: Path) -> None:
    from cli_util import RULES

    rules = load_rules(RULES)
    history = history_from_state(state, rules, D(2026, 11, 2), D(2026, 12, 1))
    assert (history.start, history.end, history.runs) == (D(2026, 11, 2), D(2026, 11, 2), 1)
    assert history.moves["as_of"].min() == D(2026, 11, 2)
    assert "(by hand)" in history.moves["rule_id"].to_list()  # the hand change of day 2
    history = history_from_state(state, rules, D(2026, 1, 1))
    assert (history.start, history.end, history.runs) == (D(2026, 11, 1), D(2026, 12, 15), 3)
    with pytest.raises(StateError, match="no run from 2026-12-16 to its end; it holds "
                       "2026-11-01 to 2026-12-15"):
        history_from_state(state, rules, D(2026, 12, 16))
    with pytest.raises(OptionError, match="after --to"):
        history_from_state(state, rules, D(2026, 11, 3), D(2026, 11, 2))
    with pytest.raises(StateError, match="does not exist"):
        history_from_state(state / "nope", rules)


def test_stages_the_rules_no_longer_name_come_after_theirs() -> None:
    history = hand_history()
    history.current = history.current.with_columns(
        pl.when(pl.col("customer_id") == "c4").then(pl.lit("Old")).otherwise(pl.col("stage"))
        .alias("stage"))
    report = build_report(history)
    assert report.stages == ["A", "B", "C", "D", "Old"]
    assert report.distribution.select("stage", "customers").rows()[-2:] == [("D", 0), ("Old", 1)]
    assert any("stages the rules don't name: Old" in w for w in report.warnings)
