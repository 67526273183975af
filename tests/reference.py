"""A small row-by-row reference of SPEC "How a run decides" steps 1-3 and of the metrics.

Plain Python loops, one customer (or usage row) at a time, written to be read
against the SPEC rather than to be fast. The property tests compare the
vectorised library with it on random rules and data.

Conditions are Python callables over a customer's values that return True,
False or None (SQL NULL); ``sql_and``/``sql_or``/``sql_not`` give SQL's
three-valued logic, and only True lets a rule fire.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Truth = bool | None
Condition = Callable[[dict[str, Any]], Truth]
INITIAL_RULE = "initial"


# -- SQL three-valued logic ----------------------------------------------------------------

def sql_not(x: Truth) -> Truth:
    return None if x is None else not x


def sql_and(x: Truth, y: Truth) -> Truth:
    if x is False or y is False:
        return False
    if x is None or y is None:
        return None
    return True


def sql_or(x: Truth, y: Truth) -> Truth:
    if x is True or y is True:
        return True
    if x is None or y is None:
        return None
    return False


def sql_compare(x: Any, op: str, y: Any) -> Truth:
    """``x op y`` where a NULL operand makes the comparison NULL."""
    if x is None or y is None:
        return None
    return {"=": x == y, "<>": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


# -- decisions ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    id: str
    from_stages: Sequence[str] | str  # a list of stage names, or "*"
    to: str
    when: Condition
    priority: int = 0
    segments: Sequence[str] | None = None  # the segments it applies to (None: every one)


@dataclass
class Customer:
    id: str
    stage: str | None
    entered: dt.date | None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Move:
    customer_id: str
    from_stage: str | None
    to_stage: str
    rule_id: str
    hop: int
    days_in_from_stage: int | None


@dataclass
class Decision:
    stages: dict[str, str]  # final stage per customer
    entered: dict[str, dt.date | None]
    days_in_stage: dict[str, int | None]
    transitions: list[Move]  # hop, then input order
    loops: list[str]  # customers stopped because their winning rule would loop
    pending: list[str]  # customers that would still move when max_hops ran out
    segments: dict[str, str] = field(default_factory=dict)  # with segments: each customer's


def applies(rule: Rule, stage: str, terminal: set[str], segment: str | None = None) -> bool:
    """Whether ``rule``'s `from` names ``stage`` ("*": every non-terminal stage but `to`), and
    the rule is one of the customer's ``segment``."""
    if rule.segments is not None and segment not in rule.segments:
        return False
    if rule.from_stages == "*":
        return stage not in terminal and stage != rule.to
    return stage in rule.from_stages


def winner(rules: Sequence[Rule], stage: str, values: dict[str, Any],
           terminal: set[str]) -> Rule | None:
    """The candidate with the highest priority; on a tie the one written first."""
    best: Rule | None = None
    for rule in rules:  # file order
        if applies(rule, stage, terminal, values.get("segment")) and rule.when(
                values) is True and (
                best is None or rule.priority > best.priority):
            best = rule
    return best


def segment_of(segments: Sequence[tuple[str, Condition | None]], default: str,
               values: dict[str, Any]) -> str:
    """The first segment (in file order) whose condition is True; a segment without one
    takes every customer; none taken: ``default``."""
    for name, when in segments:
        if when is None or when(values) is True:
            return name
    return default


def decide(*, stage_names: Sequence[str], terminal: set[str], initial_stage: str,
           max_hops: int | None, rules: Sequence[Rule], as_of: dt.date,
           customers: Sequence[Customer],
           segments: Sequence[tuple[str, Condition | None]] = (),
           default_segment: str = "default") -> Decision:
    """Rules are in file order (the file's, then each segment's own); ``segments``: each
    segment's name and condition, read on the customer's attributes."""
    hops_allowed = len(stage_names) if max_hops is None else max_hops
    out = Decision({}, {}, {}, [], [], [])
    moves: list[tuple[int, int, Move]] = []  # (hop, input position, move)
    for position, customer in enumerate(customers):
        stage, entered = customer.stage, customer.entered
        if stage is None:  # step 1
            stage, entered = initial_stage, as_of
            moves.append((0, position, Move(customer.id, None, stage, INITIAL_RULE, 0, None)))
        held = {stage}
        hop = 0
        segment = (segment_of(segments, default_segment, customer.attributes) if segments
                   else None)
        if segment is not None:
            out.segments[customer.id] = segment
        while True:  # steps 2 and 3
            days = None if entered is None else (as_of - entered).days
            values = {**customer.attributes, "stage": stage, "days_in_stage": days,
                      "segment": segment}
            rule = winner(rules, stage, values, terminal)
            if rule is None:
                break
            if hop == hops_allowed:  # the hops ran out: it stays, "pending" if it could move
                if rule.to not in held:
                    out.pending.append(customer.id)
                break
            if rule.to in held:  # the loop stop: no move, and no more moves this run
                out.loops.append(customer.id)
                break
            hop += 1
            moves.append((hop, position, Move(customer.id, stage, rule.to, rule.id, hop, days)))
            stage, entered = rule.to, as_of
            held.add(stage)
        out.stages[customer.id] = stage
        out.entered[customer.id] = entered
        out.days_in_stage[customer.id] = None if entered is None else (as_of - entered).days
    out.transitions = [m for _, _, m in sorted(moves, key=lambda t: (t[0], t[1]))]
    return out


# -- metrics --------------------------------------------------------------------------------

@dataclass(frozen=True)
class UsageRow:
    customer_id: str
    timestamp: dt.datetime | None
    values: dict[str, Any]


@dataclass(frozen=True)
class MetricSpec:
    agg: str
    column: str | None = None
    where: Condition | None = None
    window_days: int | None = None


NO_ROWS = {"count": 0, "sum": 0, "n_unique": 0, "any": False}
# SPEC leaves open the sum of rows whose values are all NULL (SQL says NULL): not compared.
UNSPECIFIED = object()


def metric(spec: MetricSpec, rows: Sequence[UsageRow], customer_id: str,
           as_of: dt.date) -> Any:
    """One metric for one customer; ``rows`` are every usage row, in input order."""
    kept: list[tuple[dt.datetime, int, dict[str, Any]]] = []
    for seq, row in enumerate(rows):
        if row.customer_id != customer_id or row.timestamp is None:
            continue
        day = row.timestamp.date()
        if day > as_of:
            continue
        if spec.window_days is not None and (as_of - day).days >= spec.window_days:
            continue
        if spec.where is not None and spec.where(row.values) is not True:
            continue
        kept.append((row.timestamp, seq, row.values))
    if not kept:
        return NO_ROWS.get(spec.agg)
    if spec.agg == "count":
        return len(kept)
    if spec.agg == "any":
        return True
    if spec.agg in ("first", "last"):
        # the earliest (latest) timestamp; among its rows the smallest (largest) value,
        # NULL only when all of theirs are (docs/rules.md, `first` and `last`)
        stamp = min(k[0] for k in kept) if spec.agg == "first" else max(k[0] for k in kept)
        if spec.column == "timestamp":
            return stamp
        tied = [k[2][spec.column] for k in kept if k[0] == stamp]
        present = [v for v in tied if v is not None]
        if not present:
            return None
        return min(present) if spec.agg == "first" else max(present)
    assert spec.column is not None
    values = [ts if spec.column == "timestamp" else v[spec.column] for ts, _, v in kept]
    present = [v for v in values if v is not None]
    if spec.agg == "n_unique":
        return len(set(present))
    if not present:
        return UNSPECIFIED if spec.agg == "sum" else None
    if spec.agg == "sum":
        return sum(present)
    if spec.agg == "mean":
        return sum(present) / len(present)
    if spec.agg == "min":
        return min(present)
    if spec.agg == "max":
        return max(present)
    raise ValueError(f"unknown agg {spec.agg}")
