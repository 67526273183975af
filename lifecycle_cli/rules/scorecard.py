"""Health scorecards (``scorecard:``): weighted measures mapped to 0-100 points, a total
score and its bands, as per-customer values that rules, CTAs and reports read.

A scorecard is written as data and becomes expressions: each measure's points, the
score and the band are SQL expressions over the measure's value (a name or an
expression, as in ``derived:``), compiled like derived values after them
(`lifecycle_cli.engine.compile`). So every engine computes them (Polars, DuckDB, Spark,
`lifecycle sql`), `reason` and `explain` show them, and ``previous(health)`` reads them.

The columns, for ``name: health`` (the default) and a measure ``logins``:

- ``health_logins_points``: the measure's points, 0 to 100, one decimal;
- ``health``: the weighted mean of the points of the measures that have points
  (``sum(points * weight) / sum(weight)``, one decimal): a measure whose value is
  NULL and that has no ``missing`` points is left out and the others' weights count
  for it (Gainsight's rule); NULL when no measure has points;
- ``health_band``: the name of the first band whose ``below`` the score is under,
  else the last band's (NULL for a NULL score).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from ..errors import Problem
from ..expressions import ExpressionError, parse, referenced_names
from ..models import RulesModel

if TYPE_CHECKING:
    from .model import Rules

NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"  # the score's name and measure ids: parts of column names
DEFAULT_NAME = "health"
POINTS_DECIMALS = 1  # points and the score are rounded to this; the band reads the rounded


class Threshold(RulesModel):
    """One step of a measure's ``thresholds``: ``{below: 5, points: 0}``, or the last,
    ``{else: 100}``."""

    below: float | None = None
    points: float | None = Field(default=None, ge=0, le=100)
    else_: float | None = Field(default=None, alias="else", ge=0, le=100)


class Linear(RulesModel):
    """``linear: {from: 0, to: 5}``: ``from`` (and beyond) scores 0 points, ``to`` (and
    beyond) 100, in between on the straight line; ``from`` may be the larger (fewer is
    better: days since the last login)."""

    from_: float = Field(alias="from")
    to: float


class Measure(RulesModel):
    id: str = Field(pattern=NAME)
    value: str = Field(min_length=1)  # a name or an expression, as a derived value
    weight: float = Field(gt=0)
    thresholds: list[Threshold] | None = Field(default=None, min_length=1)
    linear: Linear | None = None
    # the points of a NULL value; none: the measure is left out, the weights renormalised
    missing: float | None = Field(default=None, ge=0, le=100)
    description: str | None = None


class Band(RulesModel):
    name: str = Field(min_length=1)
    below: float | None = Field(default=None, gt=0, le=100)  # none: the last band
    description: str | None = None


def _default_bands() -> list[Band]:
    return [Band(name="red", below=40), Band(name="amber", below=70), Band(name="green")]


class Scorecard(RulesModel):
    name: str = Field(default=DEFAULT_NAME, pattern=NAME)
    description: str | None = None
    measures: list[Measure] = Field(min_length=1)
    bands: list[Band] = Field(default_factory=_default_bands, min_length=1)

    # -- the columns ------------------------------------------------------------------------
    @property
    def score_column(self) -> str:
        return self.name

    @property
    def band_column(self) -> str:
        return f"{self.name}_band"

    def points_column(self, measure: str) -> str:
        return f"{self.name}_{measure}_points"

    @property
    def columns(self) -> list[str]:
        """The scorecard's columns in the customers output's order: the score, the band,
        then each measure's points."""
        return [self.score_column, self.band_column,
                *[self.points_column(m.id) for m in self.measures]]

    # -- the expressions ---------------------------------------------------------------------
    def expressions(self) -> list[tuple[str, str, tuple[str | int, ...]]]:
        """(column, SQL text, key path) in the order they are computed: each measure's
        points, the score, the band."""
        out: list[tuple[str, str, tuple[str | int, ...]]] = [
            (self.points_column(m.id), points_text(m), ("scorecard", "measures", i))
            for i, m in enumerate(self.measures)]
        out.append((self.score_column, self.score_text(), ("scorecard", "measures")))
        out.append((self.band_column, self.band_text(), ("scorecard", "bands")))
        return out

    def score_text(self) -> str:
        weighted, counted = [], []
        for m in self.measures:
            points, weight = self.points_column(m.id), _number(m.weight)
            weighted.append(f"COALESCE({points} * {weight}, 0)")
            counted.append(f"CASE WHEN {points} IS NULL THEN 0 ELSE {weight} END")
        # no measure with points: 0 / 0, which is NULL on every engine
        return (f"round(({' + '.join(weighted)}) / ({' + '.join(counted)}), "
                f"{POINTS_DECIMALS})")

    def band_text(self) -> str:
        score = self.score_column
        branches = [f"WHEN {score} < {_number(b.below)} THEN {_text(b.name)}"
                    for b in self.bands if b.below is not None]
        branches.append(f"WHEN {score} IS NOT NULL THEN {_text(self.bands[-1].name)}")
        return "CASE " + " ".join(branches) + " END"

    def band_limits(self) -> list[tuple[str, float | None, float | None]]:
        """(band, from, below) for each band: from its predecessor's ``below`` (None: 0)
        to its own (None: 100 included)."""
        out: list[tuple[str, float | None, float | None]] = []
        low: float | None = None
        for band in self.bands:
            out.append((band.name, low, band.below))
            low = band.below
        return out


def points_text(m: Measure) -> str:
    """The measure's points as SQL: NULL (or ``missing``) for a NULL value, else by its
    thresholds or its straight line, rounded to one decimal."""
    value = f"({m.value}\n)"  # the newline ends a `--` comment in the user's text
    missing = "NULL" if m.missing is None else _number(m.missing)
    branches = [f"WHEN {value} IS NULL THEN {missing}"]
    if m.thresholds is not None:
        for t in m.thresholds:
            if t.below is not None and t.points is not None:
                branches.append(f"WHEN {value} < {_number(t.below)} THEN {_number(t.points)}")
        last = m.thresholds[-1].else_
        tail = f" ELSE {_number(last)}" if last is not None else ""
    elif m.linear is not None:
        low, high = m.linear.from_, m.linear.to
        zero, full = ("<=", ">=") if low < high else (">=", "<=")
        branches.append(f"WHEN {value} {zero} {_number(low)} THEN 0")
        branches.append(f"WHEN {value} {full} {_number(high)} THEN 100")
        tail = (f" ELSE ({value} - {_number(low)}) * 100.0 / "
                f"({_number(high)} - {_number(low)})")
    else:  # reported by check_scorecard
        tail = ""
    return f"round(CASE {' '.join(branches)}{tail} END, {POINTS_DECIMALS})"


def _number(x: float | None) -> str:
    """A number as an SQL literal: whole numbers without a decimal point."""
    assert x is not None
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# -- the checks ----------------------------------------------------------------------------


def scorecard_columns(rules: Rules) -> list[str]:
    """The scorecard's columns (none without a scorecard), in the output's order."""
    return [] if rules.scorecard is None else rules.scorecard.columns


def check_scorecard(rules: Rules, taken: dict[str, str]) -> list[Problem]:
    """The checks of ``scorecard:`` that need no data: each measure has thresholds or a
    line, thresholds and bands go up, ids and bands are unique, the columns clash with
    no other name (``taken``: name -> what it is), and a measure does not read the
    scorecard's own columns. Names the values read are checked with the data (they may
    be customer columns), with "did you mean", when the rules are compiled."""
    card = rules.scorecard
    if card is None:
        return []
    p = rules.problem
    problems: list[Problem] = []
    ids: dict[str, int] = {}
    own = set(card.columns)
    for i, m in enumerate(card.measures):
        at = ("scorecard", "measures", i)
        if m.id in ids:
            problems.append(p(f"duplicate measure id '{m.id}' (also measures[{ids[m.id]}])",
                              *at, "id", rule_id=m.id))
        ids.setdefault(m.id, i)
        if (m.thresholds is None) == (m.linear is None):
            problems.append(p(
                f"the measure '{m.id}' needs either `thresholds` or `linear`"
                + (" (not both)" if m.thresholds is not None else ""), *at, rule_id=m.id,
                hint="thresholds: [{below: 5, points: 0}, {below: 20, points: 50}, "
                "{else: 100}], or linear: {from: 0, to: 20}"))
        if m.thresholds is not None:
            problems += _check_thresholds(rules, m, at)
        if m.linear is not None and m.linear.from_ == m.linear.to:
            problems.append(p(
                f"`linear` needs two different numbers (from: {_number(m.linear.from_)}, "
                f"to: {_number(m.linear.to)})", *at, "linear", rule_id=m.id,
                hint="from: the value that scores 0 points; to: the value that scores 100"))
        try:
            read = referenced_names(parse(m.value))
        except ExpressionError as err:
            problems.append(p(err.message, *at, "value", rule_id=m.id, hint=err.hint))
            continue
        for name in read:
            if name in own:
                problems.append(p(
                    f"'{name}' is a column of the scorecard itself; a measure reads "
                    "customer columns, metrics, derived values and built-ins", *at, "value",
                    rule_id=m.id, hint="an export column of this name is replaced by the "
                    "scorecard's: rename the scorecard (`name:`) to score it"))
    problems += _check_bands(rules)
    head: tuple[str | int, ...] = ("scorecard", "name") if "name" in card.model_fields_set \
        else ("scorecard",)
    where = {card.score_column: head, card.band_column: head} | {
        card.points_column(m.id): ("scorecard", "measures", i, "id")
        for i, m in enumerate(card.measures)}
    for column, path in where.items():
        if column in taken:
            problems.append(p(
                f"the scorecard's column '{column}' is also {taken[column]}", *path,
                hint="rename the scorecard (`name:`), the measure or the other one"))
    return problems


def _check_thresholds(rules: Rules, m: Measure, at: tuple[str | int, ...]) -> list[Problem]:
    problems: list[Problem] = []
    steps = m.thresholds or []
    last = None
    for j, t in enumerate(steps):
        path = (*at, "thresholds", j)
        final = j == len(steps) - 1
        if t.else_ is not None:
            if t.below is not None or t.points is not None:
                problems.append(rules.problem(
                    "`else` stands alone: {else: POINTS} scores every value not below an "
                    "earlier threshold", *path, rule_id=m.id))
            elif not final:
                problems.append(rules.problem(
                    "`else` must be the last threshold", *path, rule_id=m.id,
                    hint="move it to the end"))
            continue
        if t.below is None or t.points is None:
            missing = "below" if t.below is None else "points"
            problems.append(rules.problem(
                f"a threshold needs `below` and `points` (`{missing}` is missing)", *path,
                rule_id=m.id, hint="e.g. {below: 5, points: 0}; the last one {else: 100}"))
            continue
        if last is not None and t.below <= last:
            problems.append(rules.problem(
                f"thresholds go up: below {_number(t.below)} comes after below "
                f"{_number(last)}", *path, "below", rule_id=m.id,
                hint="order them from the lowest `below` to the highest"))
        last = t.below if last is None else max(last, t.below)
    if steps and steps[-1].else_ is None:
        problems.append(rules.problem(
            "the last threshold must be {else: POINTS}: the points of the values not below "
            "any threshold", *at, "thresholds", len(steps) - 1, rule_id=m.id,
            hint="e.g. append {else: 100}"))
    return problems


def _check_bands(rules: Rules) -> list[Problem]:
    card = rules.scorecard
    assert card is not None
    problems: list[Problem] = []
    names: dict[str, int] = {}
    last = None
    for k, band in enumerate(card.bands):
        path = ("scorecard", "bands", k)
        if band.name in names:
            problems.append(rules.problem(
                f"duplicate band '{band.name}' (also bands[{names[band.name]}])", *path,
                "name"))
        names.setdefault(band.name, k)
        final = k == len(card.bands) - 1
        if band.below is None and not final:
            problems.append(rules.problem(
                f"the band '{band.name}' needs `below`: only the last band goes up to 100",
                *path, hint=f"give the score it ends below, e.g. {{name: {band.name}, "
                "below: 70}"))
        elif band.below is not None and final:
            problems.append(rules.problem(
                f"the last band ('{band.name}') takes every score from the band before it "
                "up to 100: leave out its `below`", *path, "below",
                hint=f"{{name: {band.name}}}"))
        if band.below is not None:
            if last is not None and band.below <= last:
                problems.append(rules.problem(
                    f"bands go up: below {_number(band.below)} comes after below "
                    f"{_number(last)}", *path, "below",
                    hint="order them from the lowest score to the highest, e.g. red, amber, "
                    "green"))
            last = band.below if last is None else max(last, band.below)
    return problems


def derived_problems(rules: Rules) -> list[Problem]:
    """Derived values that name a scorecard column: the scorecard is computed after every
    derived value (it may read them), so they cannot read it."""
    own = set(scorecard_columns(rules))
    if not own:
        return []
    problems = []
    for name, text in rules.derived.items():
        try:
            read = referenced_names(parse(text))
        except ExpressionError:
            continue  # reported by the expression checks
        for column in read:
            if column in own:
                problems.append(rules.problem(
                    f"'{column}' is a scorecard column, computed after every derived value "
                    "(the scorecard may read them); a derived value cannot read it",
                    "derived", name, rule_id=name,
                    hint="use it in transitions and CTAs (`when`, `close_when`), which see "
                    "the scorecard, or score the derived value as a measure"))
    return problems
