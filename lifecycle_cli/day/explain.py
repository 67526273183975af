"""Why is this customer here? Every value and every rule's verdict, hop by hop.

``explain`` runs the same day as ``run`` (`lifecycle_cli.day.pipeline.run_day`) on
the chosen customers only (every customer is decided independently, so the
answer is the same), with tracing on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import DAYS_IN_STAGE, ENTERED, ID, OVERDUE, SEGMENT, STAGE
from ..engine.decide import WINNER
from ..expressions import previous_column
from ..rules.model import Rules
from ..rules.scorecard import Measure
from .load import Tables, UsageSpecs, load
from .pipeline import Prepared, run_day
from .start import Start


@dataclass
class RuleVerdict:
    rule_id: str
    to_stage: str
    priority: int
    applies: bool  # the customer's stage is in the rule's `from`
    when: bool | None  # the condition's value (None: NULL, which counts as false)
    values: str  # name=value of each name the condition reads
    won: bool = False
    segment: str | None = None  # a segment's own rule: that segment (None: the file's rule)


@dataclass
class Hop:
    hop: int
    stage: str
    days_in_stage: int | None
    verdicts: list[RuleVerdict]
    winner: str | None
    moved_to: str | None
    refused_as_loop: bool = False


@dataclass
class SegmentTest:
    """One segment's `when` for one customer: whether it held, and the values it read."""

    segment: str
    when: str | None  # None: the catch-all (or `default`), which takes every customer left
    held: bool | None  # None: NULL, which counts as false
    values: str


@dataclass
class SegmentChoice:
    """Which segment a customer is in, and why: the segments tried in file order, up to and
    including the one that took it; what the segment changes."""

    name: str
    tried: list[SegmentTest]
    expected_days: dict[str, int | None]  # the stages whose expected days it changes
    own_rules: list[str]  # the transition and CTA rules it adds or replaces (ids)


@dataclass
class MeasureScore:
    """One scorecard measure for one customer: what it scored and what it added."""

    id: str
    value_of: str  # the measure's `value` in the rules: a name or an expression
    value: Any  # its value for the customer (None: NULL)
    scored_by: str  # the thresholds or the line, and the points of a NULL value
    points: float | None  # None: no points (a NULL value without `missing`): left out
    weight: float
    share: float | None  # its weight over the weights of the measures with points
    contribution: float | None  # points x share: what it adds to the score


@dataclass
class ScoreExplanation:
    """The customer's scorecard: each measure's part, the score and its band."""

    name: str  # the score's column
    score: float | None
    band: str | None
    band_from: float | None  # the band's limits: from (None: 0) ...
    band_below: float | None  # ... to below this (None: up to 100)
    measures: list[MeasureScore]
    weight_counted: float  # the weights of the measures with points
    weight_total: float


@dataclass
class Explanation:
    customer_id: Any
    stage_at_start: str | None
    stage_entered_at_start: dt.date | None
    initial_assignment: bool
    metrics: dict[str, Any]
    derived: dict[str, Any]
    hops: list[Hop]
    stage: str
    stage_entered_at: dt.date | None
    days_in_stage: int | None
    expected_days: int | None
    overdue: bool
    pending_rule: str | None = None  # would still move, but max_hops was reached
    transitions: list[dict[str, Any]] = field(default_factory=list)
    # the CTAs this run creates or closes for the customer (CTA rows, see ctas.py)
    ctas: list[dict[str, Any]] = field(default_factory=list)
    # what previous() reads: each name's value at the state's previous run (None: none)
    previous: dict[str, Any] = field(default_factory=dict)
    previous_run: dt.date | None = None  # the state's run those values come from
    scorecard: ScoreExplanation | None = None  # with a `scorecard:` in the rules
    segment: SegmentChoice | None = None  # with `segments:` in the rules

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dt.date | dt.datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return plain(asdict(self))


def explain(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: UsageSpecs,
    ids: Sequence[str],
    as_of: dt.date | None = None,
    *,
    encoding: str | None = None,
    start: Start | None = None,
    tables: Tables | None = None,
) -> list[Explanation]:
    """Explain the decision for each customer id in ``ids`` (in that order).

    ``start``: where the day starts (a state's stages and CTAs, as `run --state` starts
    from them: see `lifecycle_cli.state.view.StateView.start`).
    """
    as_of = as_of or dt.date.today()
    loaded = load(rules, customers_path, usage_paths, only_ids=ids, encoding=encoding,
                  tables=tables)
    day = run_day(rules, loaded, as_of, start, trace=True)
    prepared, engine, final = day.prepared, day.engine, day.final
    cta_rows = day.ctas.ctas
    compiled = prepared.compiled
    by_index = {r.index: r for r in compiled.transitions}
    pending = {str(c): r for c, r in engine.pending.select(ID, "rule_id").iter_rows()}
    measured = final.select(ID, *[value.expr.alias(f"__measure_{i}")
                                  for i, (_, value) in enumerate(compiled.measures)])
    tests = _segment_tests(prepared)
    out = []
    for wanted in ids:
        key = pl.col(ID).cast(pl.String) == wanted
        began = prepared.state.filter(key).row(0, named=True)
        end = final.filter(key).row(0, named=True)
        transitions = engine.transitions.filter(pl.col("customer_id").cast(pl.String) == wanted)
        moved_hops = set(transitions["hop"].to_list())
        hops: list[Hop] = []
        for hop, frame in engine.trace:
            rows = frame.filter(key)
            if rows.height == 0:
                continue
            row = rows.row(0, named=True)
            winner = row[WINNER]
            verdicts = []
            for rule in compiled.transitions:
                i = rule.index
                if rule.segments is not None and row.get(SEGMENT) not in rule.segments:
                    continue  # another segment's rule
                verdicts.append(
                    RuleVerdict(
                        rule_id=rule.rule.id,
                        to_stage=rule.rule.to,
                        priority=rule.rule.priority,
                        applies=bool(row[f"__applies_{i}"]),
                        when=row[f"__when_{i}"],
                        values=row[f"__reason_{i}"],
                        won=winner == i,
                        segment=rule.segments[0] if rule.path[:1] == ("segments",) and
                        rule.segments else None,
                    )
                )
            winner_rule = by_index[winner].rule if winner is not None else None
            # a winner that made no move at this hop was refused: it would close a loop
            refused = winner_rule is not None and hop not in moved_hops
            hops.append(
                Hop(
                    hop=hop,
                    stage=row[STAGE],
                    days_in_stage=row[DAYS_IN_STAGE],
                    verdicts=verdicts,
                    winner=winner_rule.id if winner_rule else None,
                    moved_to=None if winner_rule is None or refused else winner_rule.to,
                    refused_as_loop=refused,
                )
            )
        out.append(
            Explanation(
                customer_id=began[ID],
                stage_at_start=began[STAGE],
                stage_entered_at_start=began[ENTERED],
                initial_assignment=began[STAGE] is None,
                metrics={name: end.get(name) for name in rules.metrics},
                derived={name: end.get(name) for name in rules.derived},
                hops=hops,
                stage=end[STAGE],
                stage_entered_at=end[ENTERED],
                days_in_stage=end[DAYS_IN_STAGE],
                expected_days=end["expected_days"],
                overdue=bool(end[OVERDUE]),
                pending_rule=pending.get(wanted),
                transitions=transitions.drop("as_of").to_dicts(),
                ctas=cta_rows.filter(pl.col("customer_id").cast(pl.String) == wanted)
                .drop("as_of", "customer_id").to_dicts(),
                previous={name: began.get(previous_column(name))
                          for name in rules.previous_names},
                previous_run=day.start.base,
                scorecard=score_explanation(rules, end, measured.filter(key).row(0)[1:]),
                segment=_segment_choice(rules, end.get(SEGMENT), tests.get(wanted, [])),
            )
        )
    return out


def _segment_tests(prepared: Prepared) -> dict[str, list[SegmentTest]]:
    """Each customer's segments tried in file order (id as text -> tests), on the export's
    columns and the metrics, as the segment was chosen (`CompiledRules.segment_expr`)."""
    compiled = prepared.compiled
    if not compiled.segments:
        return {}
    frame = prepared.started.join(prepared.metrics.values, on=ID, how="left")
    conditions = [(name, when) for name, when in compiled.segments if when is not None]
    tested = frame.select(
        pl.col(ID).cast(pl.String),
        *[when.expr.alias(f"__held_{j}") for j, (_, when) in enumerate(conditions)],
        *[compiled.reason_for(when).alias(f"__values_{j}")
          for j, (_, when) in enumerate(conditions)])
    out: dict[str, list[SegmentTest]] = {}
    for row in tested.iter_rows():
        tests = []
        for j, (name, when) in enumerate(conditions):
            held = row[1 + j]
            tests.append(SegmentTest(name, when.text, held, row[1 + len(conditions) + j]))
            if held:
                break
        out[row[0]] = tests
    return out


def _segment_choice(rules: Rules, name: str | None, tests: list[SegmentTest]
                    ) -> SegmentChoice | None:
    if name is None or not rules.segments:
        return None
    if not tests or not tests[-1].held:  # none held: the catch-all, or `default`
        tests = [*tests, SegmentTest(name, None, True, "")]
    own = next((s for s in rules.segments if s.name == name), None)
    return SegmentChoice(
        name=name, tried=tests,
        expected_days=dict(own.expected_days) if own else {},
        own_rules=[*(t.id for t in own.transitions), *(c.id for c in own.ctas)] if own else [])


def score_explanation(rules: Rules, row: dict[str, Any], values: Sequence[Any]
                      ) -> ScoreExplanation | None:
    """The scorecard of one customer from its final ``row`` (the scorecard's columns) and
    its measures' ``values``, in the rules' order."""
    card = rules.scorecard
    if card is None:
        return None
    points = [row.get(card.points_column(m.id)) for m in card.measures]
    counted = sum(m.weight for m, p in zip(card.measures, points, strict=True) if p is not None)
    measures = []
    for m, value, got in zip(card.measures, values, points, strict=True):
        share = m.weight / counted if got is not None else None
        measures.append(MeasureScore(
            id=m.id, value_of=m.value, value=value, scored_by=scored_by(m), points=got,
            weight=m.weight, share=share,
            contribution=None if share is None or got is None else got * share))
    band = row.get(card.band_column)
    low, below = next(((lo, hi) for name, lo, hi in card.band_limits() if name == band),
                      (None, None))
    return ScoreExplanation(
        name=card.score_column, score=row.get(card.score_column), band=band, band_from=low,
        band_below=below, measures=measures, weight_counted=counted,
        weight_total=sum(m.weight for m in card.measures))


def scored_by(m: Measure) -> str:
    """How a measure maps its value to points, in words: ``<5: 0, <20: 50, else 100``,
    ``0 → 0 … 5 → 100``; then the points of a NULL value, where ``missing`` gives them."""
    if m.thresholds is not None:
        steps = [f"<{_num(t.below)}: {_num(t.points)}" for t in m.thresholds
                 if t.below is not None and t.points is not None]
        steps += [f"else {_num(t.else_)}" for t in m.thresholds if t.else_ is not None]
        text = ", ".join(steps)
    elif m.linear is not None:
        text = f"{_num(m.linear.from_)} → 0 … {_num(m.linear.to)} → 100"
    else:
        text = ""
    return text + ("" if m.missing is None else f"; null: {_num(m.missing)}")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"
