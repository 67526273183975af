"""`explain`: every value and every candidate rule's verdict, hop by hop."""

from __future__ import annotations

import datetime as dt

from lifecycle_cli import explain, parse_rules

AS_OF = dt.date(2026, 11, 1)
RULES = parse_rules("""\
version: 1
stages:
  - {name: A, expected_days: 10}
  - {name: B}
  - {name: C}
  - {name: D}
initial_stage: A
max_hops: 2
metrics:
  logins: {agg: count, where: "event = 'login'"}
derived:
  busy: "logins >= 2"
transitions:
  - {id: a_to_b, from: A, to: B, when: "busy"}
  - {id: b_to_c, from: B, to: C, when: "score > 5"}
  - {id: c_to_d, from: C, to: D, when: "TRUE"}
  - {id: b_to_a, from: B, to: A, when: "score IS NULL"}
""")


def test_hops_verdicts_values_and_the_loop_stop(export) -> None:
    customers = export("c.csv", [
        {"customer_id": "1", "stage": None, "stage_entered_at": None, "score": 9},
        {"customer_id": "2", "stage": "A", "stage_entered_at": dt.date(2026, 10, 1), "score": None},
    ])
    usage = export("u.csv", [
        {"customer_id": "1", "timestamp": "2026-10-30 10:00:00", "event": "login"},
        {"customer_id": "1", "timestamp": "2026-10-31 10:00:00", "event": "login"},
    ])
    first, second = explain(RULES, customers, [usage], ["1", "2"], AS_OF)

    assert first.initial_assignment and first.stage_at_start is None
    assert first.metrics == {"logins": 2}
    assert first.derived == {"busy": True}
    assert [(h.hop, h.stage, h.winner, h.moved_to) for h in first.hops] == [
        (1, "A", "a_to_b", "B"), (2, "B", "b_to_c", "C")]
    hop1 = {v.rule_id: v for v in first.hops[0].verdicts}
    assert hop1["a_to_b"].applies and hop1["a_to_b"].when is True and hop1["a_to_b"].won
    assert hop1["a_to_b"].values == "busy=true"
    assert not hop1["b_to_c"].applies
    # max_hops is 2: c_to_d would still move it, and explain says so
    assert first.stage == "C" and first.pending_rule == "c_to_d"

    assert second.metrics == {"logins": 0}
    assert second.days_in_stage == 31 and second.expected_days == 10 and second.overdue
    hop1 = {v.rule_id: v for v in second.hops[0].verdicts}
    assert hop1["a_to_b"].when is False and hop1["a_to_b"].values == "busy=false"
    assert second.hops[0].winner is None and second.hops[0].moved_to is None
    assert second.stage == "A" and second.transitions == []


def test_a_move_back_to_a_held_stage_is_shown_as_refused(export) -> None:
    customers = export("c.csv", [
        {"customer_id": "7", "stage": "A", "stage_entered_at": dt.date(2026, 10, 1), "score": None},
    ])
    usage = export("u.csv", [
        {"customer_id": "7", "timestamp": "2026-10-30 10:00:00", "event": "login"},
        {"customer_id": "7", "timestamp": "2026-10-31 10:00:00", "event": "login"},
    ])
    [why] = explain(RULES, customers, [usage], ["7"], AS_OF)
    assert [(h.winner, h.moved_to, h.refused_as_loop) for h in why.hops] == [
        ("a_to_b", "B", False), ("b_to_a", None, True)]
    assert why.stage == "B"
    assert why.to_dict()["hops"][1]["refused_as_loop"] is True
