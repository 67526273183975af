"""How a run decides: initial stages, then hops of transition rules.

The state is one row per customer. Each hop evaluates every rule's condition
as a Polars expression over the customers that can still move, picks the
winner per customer (highest priority, then file order) with one
``when/then`` chain, and moves the winners. A customer that did not move in
a hop cannot move in the next (nothing it depends on changed), so after the
first hop only the previous movers are evaluated again. The hops carry only
the columns the rules read; the moves are put into the state once, at the end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from ..columns import (
    DAYS_IN_STAGE,
    ENTERED,
    ID,
    INITIAL_RULE,
    PREVIOUS_STAGE,
    ROW,
    STAGE,
    TRANSITION_SCHEMA,
)
from .builtins import with_builtins
from .compile import CompiledRule, CompiledRules

VISITED = "__visited"
WINNER = "__winner"
TARGET = "__target"


def candidate_expr(rule: CompiledRule) -> pl.Expr:
    """True where ``rule`` applies: the customer's stage is in `from` (and its segment one of
    the rule's) and `when` holds."""
    return rule.applies() & rule.condition.as_condition()


def winner_expr(compiled: CompiledRules) -> pl.Expr:
    """The file index of the winning rule per customer, or NULL."""
    chain: Any = None
    for rule in compiled.transitions:
        cond = candidate_expr(rule)
        value = pl.lit(rule.index, dtype=pl.Int32)
        chain = pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)
    if chain is None:
        return pl.lit(None, dtype=pl.Int32)
    return chain.otherwise(pl.lit(None, dtype=pl.Int32))


@dataclass
class EngineResult:
    """The final state and what happened on the way."""

    state: pl.DataFrame  # ROW, ID, STAGE, ENTERED, PREVIOUS_STAGE, attributes, metrics
    transitions: pl.DataFrame  # TRANSITION_SCHEMA, in hop then input order
    loops: pl.DataFrame  # ID, stage, rule_id, to_stage: moves refused as loops
    pending: pl.DataFrame  # ID, stage, rule_id: would still move when max_hops ran out
    trace: list[tuple[int, pl.DataFrame]] = field(default_factory=list)


def decide(state: pl.DataFrame, compiled: CompiledRules, *, trace: bool = False) -> EngineResult:
    """Apply SPEC "How a run decides" steps 1 to 3 to ``state``.

    ``state`` holds ROW, ID, STAGE (text or NULL), ENTERED (date or NULL) and
    every column the expressions read. With ``trace``, the evaluation of each
    hop (every rule's verdict and values) is kept, for ``explain``.
    """
    rules = compiled.rules
    as_of = compiled.as_of
    to_by_index = {r.index: r.rule.to for r in compiled.transitions}
    id_by_index = {r.index: r.rule.id for r in compiled.transitions}
    id_dtype = state.schema[ID]
    transition_schema = {**TRANSITION_SCHEMA, "customer_id": id_dtype}
    records: list[pl.DataFrame] = []

    # step 1: the initial stage
    state = state.with_columns(pl.col(STAGE).alias(PREVIOUS_STAGE))
    no_stage = state.filter(pl.col(STAGE).is_null())
    if no_stage.height:
        records.append(
            _transition_rows(
                no_stage,
                as_of,
                from_stage=pl.lit(None, dtype=pl.String),
                to_stage=pl.lit(rules.initial_stage),
                rule_id=pl.lit(INITIAL_RULE),
                hop=0,
                days_in_from_stage=pl.lit(None, dtype=pl.Int64),
                reason=pl.lit("", dtype=pl.String),
            )
        )
        state = state.with_columns(
            pl.col(STAGE).fill_null(pl.lit(rules.initial_stage)),
            pl.when(pl.col(STAGE).is_null())
            .then(pl.lit(as_of, dtype=pl.Date))
            .otherwise(pl.col(ENTERED))
            .alias(ENTERED),
        )
    loops: list[pl.DataFrame] = []
    trace_frames: list[tuple[int, pl.DataFrame]] = []
    # the hops read only the columns the rules read (a name or notes column copied at each
    # hop cost memory and time at millions of customers); their moves are put into the
    # state once, at the end, and the state's other columns are never copied
    moves: list[pl.DataFrame] = []
    # the stages each customer held in this run, for the loop stop; only movers carry it on
    active = state.select(compiled.decision_columns(state.columns)).with_columns(
        pl.concat_list(pl.col(STAGE)).alias(VISITED))
    columns = active.columns
    hop = 0
    pending = pl.DataFrame(schema={ID: id_dtype, STAGE: pl.String, "rule_id": pl.String})
    max_hops = rules.effective_max_hops
    while active.height and compiled.transitions:
        evaluated = _evaluate(active, compiled, trace)
        evaluated = evaluated.with_columns(
            pl.col(WINNER)
            .replace_strict(to_by_index, default=None, return_dtype=pl.String)
            .alias(TARGET)
        )
        is_loop = pl.col(VISITED).list.contains(pl.col(TARGET))
        rule_id = (
            pl.col(WINNER).replace_strict(id_by_index, return_dtype=pl.String).alias("rule_id")
        )
        if hop == max_hops:
            pending = evaluated.filter(pl.col(WINNER).is_not_null() & ~is_loop).select(
                ID, STAGE, rule_id
            )
            break
        hop += 1
        if trace:
            trace_frames.append((hop, evaluated))
        looped = evaluated.filter(pl.col(WINNER).is_not_null() & is_loop)
        if looped.height:
            loops.append(looped.select(ID, STAGE, rule_id, pl.col(TARGET).alias("to_stage")))
        movers = evaluated.filter(pl.col(WINNER).is_not_null() & ~is_loop)
        if movers.height == 0:
            break
        records.append(
            _transition_rows(
                movers,
                as_of,
                from_stage=pl.col(STAGE),
                to_stage=pl.col(TARGET),
                rule_id=rule_id,
                hop=hop,
                days_in_from_stage=pl.col(DAYS_IN_STAGE),
                reason=_reason(compiled, movers[WINNER].unique().to_list()),
            )
        )
        # the movers, in their new stage, are the only customers who can move next hop
        active = movers.with_columns(
            pl.col(TARGET).alias(STAGE),
            pl.lit(as_of, dtype=pl.Date).alias(ENTERED),
            pl.col(VISITED).list.concat(pl.concat_list(pl.col(TARGET))),
        ).select(columns)
        moves.append(active.select(ROW, STAGE, ENTERED))
    if moves:
        state = _moved(state, pl.concat(moves))

    transitions = (
        pl.concat(records, how="vertical") if records else pl.DataFrame(schema=transition_schema)
    )
    loop_frame = (
        pl.concat(loops)
        if loops
        else pl.DataFrame(
            schema={ID: id_dtype, STAGE: pl.String, "rule_id": pl.String, "to_stage": pl.String}
        )
    )
    return EngineResult(
        state=state,
        transitions=transitions,
        loops=loop_frame,
        pending=pending,
        trace=trace_frames,
    )


def _moved(state: pl.DataFrame, moves: pl.DataFrame) -> pl.DataFrame:
    """``state`` with the stage and entry date of each customer's last move in ``moves``
    (ROW, STAGE, ENTERED, in hop order); the other columns are the state's own."""
    last = moves.unique(ROW, keep="last", maintain_order=True)
    new = state.select(ROW).join(last, on=ROW, how="left", maintain_order="left")
    moved = new[STAGE].is_not_null()
    return state.with_columns(
        pl.when(moved).then(new[STAGE]).otherwise(pl.col(STAGE)).alias(STAGE),
        pl.when(moved).then(new[ENTERED]).otherwise(pl.col(ENTERED)).alias(ENTERED),
    )


def _transition_rows(
    frame: pl.DataFrame,
    as_of: dt.date,
    *,
    from_stage: pl.Expr,
    to_stage: pl.Expr,
    rule_id: pl.Expr,
    hop: int,
    days_in_from_stage: pl.Expr,
    reason: pl.Expr,
) -> pl.DataFrame:
    """Rows of the transitions table, in the spec's column order."""
    return frame.select(
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        pl.col(ID).alias("customer_id"),
        from_stage.alias("from_stage"),
        to_stage.alias("to_stage"),
        rule_id.alias("rule_id"),
        pl.lit(hop, dtype=pl.Int64).alias("hop"),
        days_in_from_stage.alias("days_in_from_stage"),
        reason.alias("reason"),
    )


def _evaluate(active: pl.DataFrame, compiled: CompiledRules, trace: bool) -> pl.DataFrame:
    frame = with_builtins(active.lazy(), compiled)
    extra: list[pl.Expr] = []
    if trace:
        for rule in compiled.transitions:
            extra += [
                rule.applies().alias(f"__applies_{rule.index}"),
                rule.condition.expr.alias(f"__when_{rule.index}"),
                compiled.reason_for(rule.condition).alias(f"__reason_{rule.index}"),
            ]
    return frame.with_columns(winner_expr(compiled).alias(WINNER), *extra).collect()


def _reason(compiled: CompiledRules, winners: list[int]) -> pl.Expr:
    chain: Any = None
    for rule in compiled.transitions:
        if rule.index not in winners:
            continue
        cond = pl.col(WINNER) == rule.index
        value = compiled.reason_for(rule.condition)
        chain = pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)
    if chain is None:
        return pl.lit("", dtype=pl.String)
    return chain.otherwise(pl.lit(""))


