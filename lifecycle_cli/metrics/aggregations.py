"""Metric aggregations (`agg:` in the rules file), each registered once with all it takes.

An :class:`Aggregation` says

- whether it reads a `column`, and whether that column must be numeric;
- the kind of its result given the column's kind;
- its value for a customer with no rows left (its zero: 0, false, or NULL);
- how to compute it in pieces: partial aggregates over a batch of one
  customer's usage rows, how the partials of several batches (or days) merge,
  and the final value from the merged partials. `n_unique` instead counts
  distinct (customer, value) pairs in a pass of its own, which Polars runs in
  far less memory than `n_unique` inside the shared group-by.

Everything else follows the registry: the rules model's allowed `agg` values
and its "did you mean" (`rules.model`, `rules.load`), the `column` checks
(`rules.checks`), the batched streaming pass of a run (`metrics.compute`) and
the per-day partials of a backfill (`metrics.replay`). Adding an aggregation
is one :func:`register` call here, plus its row in docs/rules.md and its test.

This module must not import `lifecycle_cli.rules` (the rules model imports it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import polars as pl

from ..columns import TIMESTAMP
from ..expressions import Kind


class ColumnUse(Enum):
    """What an aggregation asks of the metric's `column`."""

    NONE = "none"  # it works on rows: no `column`
    ANY = "any"  # a column of any type
    NUMERIC = "numeric"  # a column of numbers or true/false


@dataclass(frozen=True)
class Rows:
    """One metric's rows within a group of one customer's usage rows.

    ``column`` is the metric's `column` (None: it takes none); ``cond`` is its
    `where` and window as one condition (None: every row counts).
    """

    column: str | None
    cond: pl.Expr | None

    @property
    def col(self) -> pl.Expr:
        assert self.column is not None, "this aggregation takes no column"
        return pl.col(self.column)

    @property
    def values(self) -> pl.Expr:
        """The column's values on the rows that count, NULL on the others."""
        return self.col if self.cond is None else pl.when(self.cond).then(self.col)

    def only(self, expr: pl.Expr) -> pl.Expr:
        """``expr`` on the rows that count. Without a condition there is no filter at all:
        a filter on a constant true gave wrong values and crashes (POLARS-NOTES.md)."""
        return expr if self.cond is None else expr.filter(self.cond)

    def count(self) -> pl.Expr:
        """How many rows count."""
        return pl.len() if self.cond is None else self.cond.sum()


# A partial's merged column by its key (see Partial); what `merge` and `final` read.
Part = Callable[[str], pl.Expr]


@dataclass(frozen=True)
class Partial:
    """One partial aggregate: ``expr`` per customer over a batch of rows, and how the
    partials of several batches merge: ``"sum"``, ``"min"``, ``"max"`` or ``"any"`` of
    themselves, or an expression over the partials' columns (``part(key)``)."""

    expr: pl.Expr
    merge: str | Callable[[Part], pl.Expr]

    def merged(self, part: Part, key: str) -> pl.Expr:
        if isinstance(self.merge, str):
            return getattr(part(key), self.merge)()
        return self.merge(part)


def always(kind: Kind) -> Callable[[Kind], Kind]:
    """A result kind whatever the column's."""
    return lambda _column: kind


def same_as_column(column: Kind) -> Kind:
    """The result has the column's kind (`timestamp` gives a datetime)."""
    return column


@dataclass(frozen=True)
class Aggregation:
    """One `agg:` of the rules file. See the module's docstring, and :func:`register`."""

    name: str
    column: ColumnUse
    kind: Callable[[Kind], Kind]  # the result's kind from the column's (Kind.NULL: no column)
    zero: bool | int | None  # the value for a customer with no rows left; None: NULL
    # computed in pieces: partial aggregates by key, and the final value from the merged ones
    partials: Callable[[Rows], dict[str, Partial]] | None = None
    final: Callable[[Part], pl.Expr] | None = None
    # or: the number of distinct non-NULL (customer, value) pairs, in a pass of its own
    distinct_pairs: bool = False
    dtype: pl.DataType | None = None  # the result's dtype where the kind does not say (Int64)

    def __post_init__(self) -> None:
        computed = self.partials is not None and self.final is not None
        if computed == self.distinct_pairs:
            raise ValueError(f"aggregation {self.name!r}: give partials and final, "
                             "or distinct_pairs")
        if self.distinct_pairs and self.column is ColumnUse.NONE:
            raise ValueError(f"aggregation {self.name!r}: distinct pairs need a column")

    @property
    def takes_column(self) -> bool:
        return self.column is not ColumnUse.NONE


AGGREGATIONS: dict[str, Aggregation] = {}


def register(aggregation: Aggregation) -> Aggregation:
    """Make ``aggregation`` an allowed `agg:` (a name registered once)."""
    if aggregation.name in AGGREGATIONS:
        raise ValueError(f"aggregation {aggregation.name!r} is already registered")
    AGGREGATIONS[aggregation.name] = aggregation
    return aggregation


def unregister(name: str) -> None:
    """Remove a registered aggregation (for tests that register their own)."""
    del AGGREGATIONS[name]


def aggregation(name: str) -> Aggregation:
    """The registered aggregation ``name`` (the rules model allows no other)."""
    return AGGREGATIONS[name]


def names() -> list[str]:
    """The registered aggregations' names, in registration order."""
    return list(AGGREGATIONS)


# -- the built-in aggregations, in the order docs/rules.md lists them --------------------------

def _one(expr: pl.Expr, merge: str) -> dict[str, Partial]:
    return {"": Partial(expr, merge)}


def _itself(part: Part) -> pl.Expr:
    return part("")


register(Aggregation(
    "count", ColumnUse.NONE, always(Kind.NUMBER), zero=0, dtype=pl.Int64(),
    partials=lambda rows: _one(rows.count().cast(pl.Int64), "sum"), final=_itself,
))
register(Aggregation(
    "sum", ColumnUse.NUMERIC, always(Kind.NUMBER), zero=0,
    partials=lambda rows: _one(rows.values.sum(), "sum"), final=_itself,
))
register(Aggregation(
    "mean", ColumnUse.NUMERIC, always(Kind.NUMBER), zero=None,
    partials=lambda rows: {"sum": Partial(rows.values.cast(pl.Float64).sum(), "sum"),
                           "n": Partial(rows.values.count(), "sum")},
    final=lambda part: pl.when(part("n") > 0).then(part("sum") / part("n")),
))
register(Aggregation(
    "min", ColumnUse.ANY, same_as_column, zero=None,
    partials=lambda rows: _one(rows.values.min(), "min"), final=_itself,
))
register(Aggregation(
    "max", ColumnUse.ANY, same_as_column, zero=None,
    partials=lambda rows: _one(rows.values.max(), "max"), final=_itself,
))
register(Aggregation(
    "n_unique", ColumnUse.ANY, always(Kind.NUMBER), zero=0, dtype=pl.Int64(),
    distinct_pairs=True,
))
register(Aggregation(
    "any", ColumnUse.NONE, always(Kind.BOOL), zero=False,
    partials=lambda rows: _one(pl.len() > 0 if rows.cond is None else rows.cond.any(), "any"),
    final=_itself,
))


def _pick(take: str) -> Callable[[Rows], dict[str, Partial]]:
    """`first` / `last`: the value on the earliest / latest row by timestamp. Rows with the
    same timestamp are told apart by their value, not their input order, which an SQL
    engine cannot see: `first` takes the smallest value, `last` the largest; NULL only when
    every value at that timestamp is NULL. A batch keeps its pick with the pick's
    timestamp; the merge picks among the batches' picks (a batch with no row has none)."""
    # nulls last for `first` (the smallest value comes first), first for `last`
    nulls_last = take == "first"

    def merge(key: str) -> Callable[[Part], pl.Expr]:
        def merged(part: Part) -> pl.Expr:
            found = part("ts").is_not_null()
            keys = [part("ts").filter(found), part("").filter(found)]
            return getattr(part(key).filter(found).sort_by(keys, nulls_last=nulls_last),
                           take)()
        return merged

    def partials(rows: Rows) -> dict[str, Partial]:
        keys = [rows.only(pl.col(TIMESTAMP)), rows.only(rows.col)]
        return {key: Partial(getattr(expr.sort_by(keys, nulls_last=nulls_last), take)(),
                             merge(key))
                for key, expr in (("", rows.only(rows.col)), ("ts", keys[0]))}

    return partials


register(Aggregation(
    "first", ColumnUse.ANY, same_as_column, zero=None,
    partials=_pick("first"), final=_itself,
))
register(Aggregation(
    "last", ColumnUse.ANY, same_as_column, zero=None,
    partials=_pick("last"), final=_itself,
))
