"""The rules compiled against one data schema: every expression as a Polars expression.

Compiling needs the data (the kinds of the customer columns and metrics) and
the as-of date, so it happens once per run; it reports every problem at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlglot import exp

from ..columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS, ID, OVERDUE, ROW, SEGMENT, STAGE
from ..errors import Problem, RulesError
from ..expressions import (
    Compiled,
    ExpressionError,
    Kind,
    compile_expression,
    previous_of,
    reason_expr,
)
from ..suggest import did_you_mean

if TYPE_CHECKING:
    from ..ctas.triggers import CTABase
    from ..rules.model import Rules, Transition

BUILTIN_KINDS = {
    "as_of": Kind.DATE,
    STAGE: Kind.STRING,
    ENTERED: Kind.DATE,
    DAYS_IN_STAGE: Kind.NUMBER,
    EXPECTED_DAYS: Kind.NUMBER,
    OVERDUE: Kind.BOOL,
}


@dataclass(frozen=True)
class CompiledRule:
    index: int  # position in `Rules.transition_rules` (the file's rules, then the segments')
    rule: Transition
    condition: Compiled
    from_stages: tuple[str, ...]  # "*" expanded
    path: tuple[str | int, ...] = ()  # where it is written: ("transitions", 0)
    segments: tuple[str, ...] | None = None  # the segments it applies to (None: all)

    def applies(self) -> pl.Expr:
        """True where the rule applies to the customer: its stage is in `from` (and its
        segment is one of the rule's)."""
        return in_segments(pl.col(STAGE).is_in(list(self.from_stages)), self.segments)


@dataclass(frozen=True)
class CompiledCTA:
    index: int  # position in `Rules.cta_rules` (the file's rules, then the segments')
    rule: CTABase  # the model of its trigger
    when: Compiled | None
    close_when: Compiled | None
    path: tuple[str | int, ...] = ()
    segments: tuple[str, ...] | None = None  # the segments it applies to (None: all)


def in_segments(condition: pl.Expr, segments: tuple[str, ...] | None) -> pl.Expr:
    """``condition`` for the customers of ``segments`` only (None: every customer)."""
    if segments is None:
        return condition
    return condition & pl.col(SEGMENT).is_in(list(segments))


@dataclass(frozen=True)
class CompiledRules:
    """Every expression of a rules file compiled against one data schema."""

    rules: Rules
    as_of: dt.date
    scope: dict[str, Kind]
    derived: list[tuple[str, Compiled]]
    transitions: list[CompiledRule]  # in decision order: priority desc, then file order
    ctas: list[CompiledCTA] = field(default_factory=list)  # in file order
    # each scorecard measure's id and value (its points, the score and the band are
    # computed as derived values, after those of `derived:`)
    measures: list[tuple[str, Compiled]] = field(default_factory=list)
    # each segment's name and `when` (None: it takes every customer left), in file order;
    # the conditions read the export's columns and the metrics (see `segment_expr`)
    segments: list[tuple[str, Compiled | None]] = field(default_factory=list)

    def segment_expr(self) -> pl.Expr:
        """Each customer's segment: the first whose `when` holds, else the last (the catch-all
        or ``default``). Evaluated on the export's columns and the metrics, before the
        decision (the customers' ``segment`` column is this from then on)."""
        names = self.rules.segment_names
        chain: Any = None
        for name, when in self.segments:
            if when is None:
                break
            value = pl.lit(name, dtype=pl.String)
            cond = when.as_condition()
            chain = pl.when(cond).then(value) if chain is None else chain.when(cond).then(value)
        rest = pl.lit(names[-1], dtype=pl.String)
        return rest if chain is None else chain.otherwise(rest)

    def decision_columns(self, columns: Sequence[str]) -> list[str]:
        """Of a state's ``columns``, those the decision reads (both engines carry only these
        through the hops): the keys, the stage and its date, every name the derived values
        and the transition conditions read, and the segment (a segment's rules and expected
        days)."""
        read = {ROW, ID, STAGE, ENTERED} | {n for _, d in self.derived for n in d.names}
        read |= {n for r in self.transitions for n in r.condition.names}
        if self.segments:
            read.add(SEGMENT)
        return [c for c in columns if c in read]

    @property
    def value_names(self) -> list[str]:
        """The derived values, then the scorecard's columns (score, band, each measure's
        points), in the customers output's order."""
        card = self.rules.scorecard
        own = [] if card is None else card.columns
        return [*[n for n, _ in self.derived if n not in own], *[c for c in own
                                                                 if c in self.scope]]

    def name_expr(self, name: str) -> pl.Expr:
        if name == "as_of":
            return pl.lit(self.as_of, dtype=pl.Date)
        return pl.col(name)

    def kind(self, name: str) -> Kind:
        """The kind of a name an expression reads (``previous(x)``: the kind of ``x``)."""
        if name in self.scope:
            return self.scope[name]
        return self.scope[previous_of(name) or name]

    def reason_for(self, compiled: Compiled) -> pl.Expr:
        return reason_expr([(n, self.name_expr(n), self.kind(n)) for n in compiled.names])


def compile_rules(
    rules: Rules,
    attribute_kinds: dict[str, Kind],
    metric_kinds: dict[str, Kind],
    as_of: dt.date,
    *,
    explain_column: Callable[[str], str | None] | None = None,
) -> CompiledRules:
    """Compile derived values and transition conditions; raise RulesError listing every problem.

    ``explain_column(name)`` may add detail (e.g. sample bad values) to a type
    problem about a customer column.
    """
    scope: dict[str, Kind] = {**attribute_kinds, **BUILTIN_KINDS, **metric_kinds}
    # what previous() may read: customer columns, metrics, and the derived values compiled
    readable = {n for n in (*attribute_kinds, *metric_kinds) if n not in BUILTIN_KINDS}
    problems: list[Problem] = []
    # the segments' conditions read the export (its own `segment` column too) and metrics
    segments: list[tuple[str, Compiled | None]] = []
    exported = {**attribute_kinds, "as_of": Kind.DATE, **metric_kinds}
    for k, seg in enumerate(rules.segments):
        if seg.when is None:
            segments.append((seg.name, None))
            continue
        try:
            segments.append((seg.name, compile_expression(seg.when, exported, as_of=as_of,
                                                          condition=True)))
        except ExpressionError as err:
            # (a name computed after the segment, such as a derived value, is refused when
            # the rules are loaded: rules.checks)
            problems.append(rules.problem(err.message, "segments", k, "when", rule_id=seg.name,
                                          hint=err.hint))
    if rules.segments:
        scope[SEGMENT] = Kind.STRING
        readable.add(SEGMENT)
    # derived value -> the uses that its type does not fit (reported at its definition)
    misfits: dict[str, list[tuple[tuple[str | int, ...], str, ExpressionError]]] = {}

    def fail(err: ExpressionError, *path: str | int, rule_id: str) -> None:
        if err.column in rules.derived and err.column != rule_id and \
                scope.get(err.column, Kind.NULL) != Kind.NULL:
            misfits.setdefault(err.column, []).append((path, rule_id, err))
            return
        hint = err.hint
        if err.column and explain_column is not None and err.column in attribute_kinds:
            hint = explain_column(err.column) or hint
        problems.append(rules.problem(err.message, *path, rule_id=rule_id, hint=hint))

    derived: list[tuple[str, Compiled]] = []
    for name, text in rules.derived.items():
        try:
            compiled = compile_expression(text, scope, as_of=as_of, previous=readable)
        except ExpressionError as err:
            fail(err, "derived", name, rule_id=name)
            scope[name] = Kind.NULL  # keep going: later problems are still worth reporting
            readable.add(name)
            continue
        scope[name] = compiled.kind
        readable.add(name)
        derived.append((name, compiled))
    measures: list[tuple[str, Compiled]] = []
    if rules.scorecard is not None:
        measures = _measures(rules, scope, as_of, readable, fail)
        if len(measures) == len(rules.scorecard.measures):
            for name, text, path in rules.scorecard.expressions():
                try:
                    compiled = compile_expression(text, scope, as_of=as_of, previous=readable)
                except ExpressionError as err:  # a bug: the measures compiled
                    problems.append(rules.problem(f"{err.message} (in {text!r})", *path))
                    continue
                scope[name] = compiled.kind
                derived.append((name, compiled))
        card = rules.scorecard
        for name in card.columns:  # keep going past a broken measure, as for derived values
            scope.setdefault(name, Kind.STRING if name == card.band_column else Kind.NUMBER)
            readable.add(name)

    non_terminal = [s.name for s in rules.stages if not s.terminal]
    transitions: list[CompiledRule] = []
    for i, (path, t, only) in enumerate(rules.transition_rules()):
        try:
            condition = compile_expression(t.when, scope, as_of=as_of, condition=True,
                                           previous=readable)
        except ExpressionError as err:
            fail(err, *path, "when", rule_id=t.id)
            continue
        stages: list[str] = []
        for f in t.from_stages:
            expanded = [s for s in non_terminal if s != t.to] if f == "*" else [f]
            stages += [s for s in expanded if s not in stages]
        transitions.append(CompiledRule(i, t, condition, tuple(stages), path, only))
    ctas: list[CompiledCTA] = []
    for i, (path, cta, only) in enumerate(rules.cta_rules()):
        conditions: dict[str, Compiled | None] = {"when": None, "close_when": None}
        for key in conditions:
            text = getattr(cta, key)
            if text:
                try:
                    conditions[key] = compile_expression(text, scope, as_of=as_of,
                                                         condition=True, previous=readable)
                except ExpressionError as err:
                    fail(err, *path, key, rule_id=cta.id)
        ctas.append(CompiledCTA(i, cta, conditions["when"], conditions["close_when"], path,
                                only))
    owners: list[tuple[tuple[str | int, ...], str, str | None]] = [
        ((*path, "owner"), c.id, c.owner) for path, c, _ in rules.cta_rules()]
    owners += [(("playbooks", name, j, "owner"), name, task.owner)
               for name, tasks in rules.playbooks.items() for j, task in enumerate(tasks)]
    for path, rule_id, owner in owners:
        if owner is not None and owner not in attribute_kinds:
            problems.append(
                rules.problem(
                    f"the owner column '{owner}' is not in the customers export",
                    *path,
                    rule_id=rule_id,
                    hint=did_you_mean(owner, list(attribute_kinds)),
                )
            )
    problems += [_misfit(rules, name, scope[name], uses) for name, uses in misfits.items()]
    if problems:
        raise RulesError(problems)
    transitions.sort(key=lambda r: (-r.rule.priority, r.index))
    return CompiledRules(rules, as_of, scope, derived, transitions, ctas, measures, segments)


def _measures(rules: Rules, scope: dict[str, Kind], as_of: dt.date, readable: set[str],
              fail: Callable[..., None]) -> list[tuple[str, Compiled]]:
    """Each scorecard measure's value compiled: a number (its points are computed from it).
    A measure that does not compile, or whose value is not a number, is a problem."""
    assert rules.scorecard is not None
    out = []
    for i, m in enumerate(rules.scorecard.measures):
        path = ("scorecard", "measures", i, "value")
        try:
            compiled = compile_expression(m.value, scope, as_of=as_of, previous=readable)
        except ExpressionError as err:
            fail(err, *path, rule_id=m.id)
            continue
        if compiled.kind not in (Kind.NUMBER, Kind.NULL):
            tree = compiled.tree
            fail(ExpressionError(
                f"the measure '{m.id}' scores {m.value!r}, a {compiled.kind.value}; a "
                "measure's value must be a number", hint=_MEASURE_HINTS.get(compiled.kind),
                column=tree.name if isinstance(tree, exp.Column) else None),
                *path, rule_id=m.id)
            continue
        out.append((m.id, compiled))
    return out


_MEASURE_HINTS = {
    Kind.BOOL: "score a flag as a number: value: \"CASE WHEN trained THEN 1 ELSE 0 END\" "
               "with linear: {from: 0, to: 1}",
    Kind.DATE: "score the days since it: value: \"days_since(last_seen)\"",
    Kind.DATETIME: "score the days since it: value: \"days_since(last_seen)\"",
    Kind.DURATION: "count whole days: days_since(d) or days_until(d)",
    Kind.STRING: "a number column that holds text somewhere is read as text: fix the values "
                 "in the export, or map the text: CASE tier WHEN 'gold' THEN 3 ... END",
}




def _misfit(rules: Rules, name: str, kind: Kind,
            uses: list[tuple[tuple[str | int, ...], str, ExpressionError]]) -> Problem:
    """A derived value whose type its uses cannot take, reported where it is defined: that
    is where the wrong expression usually is (``renewal_date - as_of`` for a number of
    days), and one problem says it for every use."""
    def where(path: tuple[str | int, ...], rule_id: str) -> str:
        _, line = rules.locate(*path)
        return f"rule '{rule_id}'" + (f", line {line}" if line else "")

    (path, rule_id, first), others = uses[0], uses[1:]
    also = "; also " + ", ".join(where(p, r) for p, r, _ in others) if others else ""
    return rules.problem(
        f"'{name}' is a {kind.value} ({rules.derived[name]!r}), which the rules that use "
        f"it cannot take: {first.message} ({where(path, rule_id)}{also})",
        "derived", name, rule_id=name, hint=first.hint)
