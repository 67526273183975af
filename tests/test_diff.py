"""`diff`: two rule sets on the same customers, compared per customer."""

from __future__ import annotations

import datetime as dt

import pytest

from lifecycle_cli import DataError, parse_rules, run
from lifecycle_cli.jobs.diff import RuleChange, compare, diff, rule_changes

AS_OF = dt.date(2026, 11, 1)
STAGES = """\
version: 1
stages: [{name: A}, {name: B}, {name: C}]
initial_stage: A
"""
OLD = parse_rules(STAGES + """\
transitions:
  - {id: a_to_b, from: A, to: B, when: "score >= 5"}
  - {id: a_to_c, from: A, to: C, when: "score >= 8"}
  - {id: b_to_c, from: B, to: C, when: "score >= 9"}
  - {id: dormant, from: C, to: A, when: "FALSE"}
""")
# a_to_b needs more; a_to_c now wins over a_to_b; dormant is gone, recheck is new
NEW = parse_rules(STAGES + """\
transitions:
  - {id: a_to_b, from: A, to: B, when: "score >= 7"}
  - {id: a_to_c, from: A, to: C, when: "score >= 8", priority: 1}
  - {id: b_to_c, from: B, to: C, when: "score >= 9"}
  - {id: recheck, from: C, to: B, when: "FALSE"}
""")
CUSTOMERS = [
    {"customer_id": "c1", "stage": "A", "stage_entered_at": dt.date(2026, 10, 1), "score": 6},
    {"customer_id": "c2", "stage": "A", "stage_entered_at": dt.date(2026, 10, 1), "score": 9},
    {"customer_id": "c3", "stage": "A", "stage_entered_at": dt.date(2026, 10, 1), "score": 2},
    {"customer_id": "c4", "stage": None, "stage_entered_at": None, "score": 0},
    {"customer_id": "c5", "stage": "B", "stage_entered_at": dt.date(2026, 10, 1), "score": 10},
    {"customer_id": "c6", "stage": None, "stage_entered_at": None, "score": 6},
]


def test_stage_change_path_change_and_unchanged_customers(export) -> None:
    d = diff(OLD, NEW, export("c.csv", CUSTOMERS), as_of=AS_OF)

    assert d.table.columns == [
        "customer_id", "stage_before", "old_stage", "new_stage", "change",
        "old_rules", "new_rules", "old_reason", "new_reason",
    ]
    assert d.table.rows() == [
        # a_to_b no longer holds: it stays in A
        ("c1", "A", "B", "A", "stage", "a_to_b", "", "a_to_b: score=6", ""),
        # C either way, but in one move by a_to_c instead of two
        ("c2", "A", "C", "C", "path", "a_to_b > b_to_c", "a_to_c",
         "a_to_b: score=9 > b_to_c: score=9", "a_to_c: score=9"),
        # no stage before: the initial assignment is a move without a reason
        ("c6", None, "B", "A", "stage", "initial > a_to_b", "initial", "a_to_b: score=6", ""),
    ]  # c3, c4 (initial only) and c5 (b_to_c both times) move alike and are left out
    assert (d.compared, d.landed_elsewhere, d.moved_differently) == (6, 2, 1)
    assert d.stage_moves.rows() == [("B", "A", 2)]
    assert d.rule_moves.rows() == [
        ("a_to_b", 3, 0, -3),
        ("a_to_c", 0, 1, 1),
        ("b_to_c", 2, 1, -1),
        ("initial", 2, 2, 0),
    ]
    assert d.rule_changes == [
        RuleChange("transitions", "a_to_b", "changed",
                   (("when", "'score >= 5'", "'score >= 7'"),)),
        RuleChange("transitions", "a_to_c", "changed", (("priority", "0", "1"),)),
        RuleChange("transitions", "dormant", "removed", (
            ("from", "'C'", ""), ("to", "'A'", ""), ("when", "'FALSE'", ""), ("priority", "0", ""),
        )),
        RuleChange("transitions", "recheck", "added", (
            ("from", "", "'C'"), ("to", "", "'B'"), ("when", "", "'FALSE'"), ("priority", "", "0"),
        )),
    ]
    assert d.rule_changes[3].describe() == "from: 'C'; to: 'B'; when: 'FALSE'; priority: 0"
    assert d.rule_changes[0].describe() == "when: 'score >= 5' -> 'score >= 7'"


def test_reading_once_gives_what_two_separate_runs_give(export) -> None:
    customers = export("c.csv", CUSTOMERS)
    # one more stage: the customers read checks stages, so these rules read the exports anew
    other = parse_rules(STAGES.replace("{name: C}]", "{name: C}, {name: D}]") + """\
transitions:
  - {id: a_to_b, from: A, to: B, when: "score >= 7"}
  - {id: b_to_d, from: B, to: D, when: "score >= 9"}
""")
    for new in (NEW, other):
        once = diff(OLD, new, customers, as_of=AS_OF)
        twice = compare(run(OLD, customers, as_of=AS_OF).day, run(new, customers, as_of=AS_OF).day)
        assert once.table.equals(twice.table)
        assert once.rule_moves.equals(twice.rule_moves)
    assert ("stages", "D", "added") in [
        (c.section, c.name, c.change) for c in rule_changes(OLD, other)
    ]


def test_same_rules_no_differences(export) -> None:
    d = diff(OLD, OLD, export("c.csv", CUSTOMERS), as_of=AS_OF)
    assert d.table.height == 0 and d.rule_changes == []
    assert d.table.columns[0] == "customer_id"
    assert d.rule_moves["delta"].to_list() == [0, 0, 0]


def test_the_table_uses_the_exports_id_header_and_values(export) -> None:
    mapped = [{"Account ID": r["customer_id"].upper(), **{k: v for k, v in r.items()
               if k != "customer_id"}} for r in CUSTOMERS]
    columns = 'columns: {customers: {customer_id: "Account ID"}}\n'
    old = parse_rules(STAGES + columns + """\
transitions:
  - {id: a_to_b, from: A, to: B, when: "score >= 5"}
""")
    new = parse_rules(STAGES + columns + "transitions: []\n")
    d = diff(old, new, export("c.csv", mapped), as_of=AS_OF)
    assert d.table.columns[0] == "Account ID"
    assert d.table["Account ID"].to_list() == ["C1", "C2", "C6"]
    assert d.table["new_rules"].to_list() == ["", "", "initial"]


def test_settings_derived_and_metrics_changes() -> None:
    base = STAGES + "derived: {big: 'score > 5'}\nmetrics: {n: {agg: count}}\n"
    old = parse_rules(base)
    new = parse_rules(
        base.replace("score > 5", "score > 6").replace("count}", "count, window_days: 7}")
        + "max_hops: 1\n"
    )
    assert rule_changes(old, new) == [
        RuleChange("derived", "big", "changed", (("expression", "'score > 5'", "'score > 6'"),)),
        RuleChange("metrics", "n", "changed", (("window_days", "none", "7"),)),
        RuleChange("settings", "settings", "changed", (("max_hops", "3", "1"),)),
    ]


def test_a_data_problem_says_which_rules_were_in_play(export) -> None:
    customers = export("c.csv", [{"customer_id": "x", "stage": "D", "score": 1}])
    with pytest.raises(DataError) as raised:
        diff(OLD, NEW, customers, as_of=AS_OF)
    assert "unknown stage 'D'" in str(raised.value)
    assert "[with the old rules]" in str(raised.value)


def test_runs_for_different_days_are_not_compared(export) -> None:
    customers = export("c.csv", CUSTOMERS)
    with pytest.raises(ValueError, match="different days"):
        compare(
            run(OLD, customers, as_of=AS_OF).day,
            run(NEW, customers, as_of=AS_OF + dt.timedelta(days=1)).day,
        )



def test_segment_changes_their_order_and_the_scorecard_are_rule_changes() -> None:
    base = STAGES + """\
segments:
  - {name: Big, when: "score > 5", expected_days: {A: 10}}
  - {name: Small, when: "score <= 5"}
"""
    old = parse_rules(base)
    # Big's expected days change, Small moves first, and a scorecard is added
    moved = base.replace("{A: 10}", "{A: 20}").replace(
        '  - {name: Small, when: "score <= 5"}\n', "").replace(
        "segments:\n", 'segments:\n  - {name: Small, when: "score <= 5"}\n')
    new = parse_rules(moved + "scorecard: {measures: [{id: s, value: score, weight: 1, "
                      "linear: {from: 0, to: 10}}]}\n")
    changes = rule_changes(old, new)
    assert RuleChange("segments", "Big", "changed",
                      (("expected_days", "{A: 10}", "{A: 20}"),)) in changes
    assert RuleChange("segments", "(order)", "changed",
                      (("order", "['Big', 'Small']", "['Small', 'Big']"),)) in changes
    assert [(c.section, c.change) for c in changes if c.section == "scorecard"] == [
        ("scorecard", "added")]
    assert rule_changes(old, old) == []
