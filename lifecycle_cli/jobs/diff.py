"""Two rule sets on the same data: who would land elsewhere, by which rule, and why.

Analysts run this before they change a live rule::

    from lifecycle_cli import load_rules
    from lifecycle_cli.diff import diff

    d = diff(load_rules("live.yaml"), load_rules("draft.yaml"), "customers.csv", ["usage.csv"])
    d.table          # one row per customer whose stage or path differs
    d.stage_moves    # old_stage -> new_stage counts
    d.rule_moves     # moves by rule, old vs new
    d.rule_changes   # what changed between the two files

:func:`compare` takes two finished runs, so runs made any other way (from a
state folder, say) can be compared too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from ..columns import ID, PREVIOUS_STAGE, ROW, STAGE
from ..day.load import Progress, Tables, UsageSpecs, load, no_progress
from ..day.pipeline import Day, reads_alike, run_day
from ..errors import LifecycleError, Problem, RulesError
from ..rules.model import Rules

STAGE_CHANGE = "stage"  # the customer lands in another stage
PATH_CHANGE = "path"  # the same stage, reached by other rules
MOVE_SEPARATOR = " > "  # between the moves of one run, in hop order

T = TypeVar("T")

DIFF_COLUMNS = (
    "stage_before",
    "old_stage",
    "new_stage",
    "change",
    "old_rules",
    "new_rules",
    "old_reason",
    "new_reason",
)


@dataclass(frozen=True)
class RuleChange:
    """One difference between the two rules files."""

    section: str  # transitions, derived, metrics, stages, segments, scorecard, settings
    name: str  # a rule id, a derived or metric name, a stage, a setting
    change: str  # added, removed, changed
    # (key, old value, new value); an added item has no old values, a removed one no new
    details: tuple[tuple[str, str, str], ...] = ()

    def describe(self) -> str:
        """``when: 'a' -> 'b'; priority: 0 -> 10`` for a change; the values of an added
        or removed item."""
        if self.change == "changed":
            return "; ".join(f"{key}: {old} -> {new}" for key, old, new in self.details)
        return "; ".join(f"{key}: {old or new}" for key, old, new in self.details)


@dataclass
class RulesDiff:
    """What two rule sets decide differently on the same customers, as tables and counts."""

    old: Day
    new: Day
    table: pl.DataFrame  # one row per customer whose stage or path differs, in input order
    stage_moves: pl.DataFrame  # old_stage, new_stage, customers: most first
    rule_moves: pl.DataFrame  # rule_id, old, new, delta: moves by rule, biggest change first
    rule_changes: list[RuleChange]

    @property
    def as_of(self) -> dt.date:
        return self.old.as_of

    @property
    def id_column(self) -> str:
        return self.old.id_column

    @property
    def compared(self) -> int:
        """How many customers both runs decided on."""
        return self.old.customers.height

    @property
    def landed_elsewhere(self) -> int:
        return self.table.filter(pl.col("change") == STAGE_CHANGE).height

    @property
    def moved_differently(self) -> int:
        """Customers that reach the same stage by other rules."""
        return self.table.filter(pl.col("change") == PATH_CHANGE).height

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {"diff": self.table}


def diff(
    old_rules: Rules,
    new_rules: Rules,
    customers_path: str | Path,
    usage_paths: UsageSpecs = (),
    as_of: dt.date | None = None,
    *,
    encoding: str | None = None,
    progress: Progress = no_progress,
    tables: Tables | None = None,
) -> RulesDiff:
    """Run both rule sets on the same exports and as-of date, and compare the runs.

    The exports are read once when both rule sets read them alike (same column
    mapping, time zone, stages and metrics); otherwise each run reads them.
    """
    as_of = as_of or dt.date.today()
    old_loaded = _labelled("old", old_rules, lambda: load(
        old_rules, customers_path, usage_paths, encoding=encoding, tables=tables,
        progress=_step("old rules", progress)))
    old = _labelled("old", old_rules, lambda: run_day(
        old_rules, old_loaded, as_of, progress=_step("old rules", progress)))
    if reads_alike(old_rules, new_rules):  # the same customers and metrics: read nothing again
        new = _labelled("new", new_rules, lambda: run_day(
            new_rules, old_loaded, as_of, metrics=old.metrics,
            progress=_step("new rules", progress)))
    else:
        new_loaded = _labelled("new", new_rules, lambda: load(
            new_rules, customers_path, usage_paths, encoding=encoding, tables=tables,
            progress=_step("new rules", progress)))
        new = _labelled("new", new_rules, lambda: run_day(
            new_rules, new_loaded, as_of, progress=_step("new rules", progress)))
    progress("comparing")
    return compare(old, new)


def _step(label: str, progress: Progress) -> Progress:
    def labelled(step: str, done: int | None = None, total: int | None = None,
                 unit: str = "") -> None:
        progress(f"{label}: {step}", done, total, unit)

    return labelled


def _labelled(label: str, rules: Rules, step: Callable[[], T]) -> T:
    """Run ``step``; say which rules were in play in problems that do not name them."""
    try:
        return step()
    except LifecycleError as error:
        file = getattr(rules.source, "file", None)
        with_rules = f"with the {label} rules" + (f" ({file})" if file else "")
        problems = [
            p
            if file is not None and p.file == file
            else dataclasses.replace(p, message=f"{p.message} [{with_rules}]")
            for p in error.problems
        ]
        raise type(error)(problems) from None


def compare(old: Day, new: Day) -> RulesDiff:
    """Compare two runs over the same customers and as-of date."""
    if old.as_of != new.as_of:
        raise ValueError(f"the runs speak for different days: {old.as_of} and {new.as_of}")
    if old.customers.height != new.customers.height:
        raise ValueError("the runs decided on different customers")
    if old.id_column != new.id_column:
        raise RulesError(
            Problem(
                f"the two rule sets read the customer id from different columns: "
                f"'{old.id_column}' and '{new.id_column}'",
                hint="map customer_id to the same column in both files (columns: customers:)",
            )
        )
    old_runs = _decided(old).rename(
        {"stage": "old_stage", "rules": "old_rules", "reason": "old_reason", "path": "old_path"}
    )
    new_runs = _decided(new).select(
        ROW,
        pl.col("stage").alias("new_stage"),
        pl.col("rules").alias("new_rules"),
        pl.col("reason").alias("new_reason"),
        pl.col("path").alias("new_path"),
    )
    both = old_runs.join(new_runs, on=ROW, how="left", maintain_order="left")
    change = (
        pl.when(pl.col("old_stage") != pl.col("new_stage"))
        .then(pl.lit(STAGE_CHANGE))
        .when(pl.col("old_path") != pl.col("new_path"))
        .then(pl.lit(PATH_CHANGE))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    ids = old.customers.select(old.id_column).with_row_index(ROW)
    table = (
        both.with_columns(change.alias("change"))
        .filter(pl.col("change").is_not_null())
        .join(ids, on=ROW, how="left", maintain_order="left")
        .sort(ROW)
        .select(old.id_column, *DIFF_COLUMNS)
    )
    return RulesDiff(
        old=old,
        new=new,
        table=table,
        stage_moves=_stage_moves(table),
        rule_moves=_rule_moves(old, new),
        rule_changes=rule_changes(old.rules, new.rules),
    )


def _decided(result: Day) -> pl.DataFrame:
    """Per customer in input order: stage before and after, the moves and their reasons.

    ``path`` (each move's rule and target stage, in hop order) tells whether two runs
    moved a customer the same way; ``rules`` and ``reason`` are its readable texts.
    """
    moves = (
        result.transitions.with_row_index("__order")
        .sort(["hop", "__order"])
        .group_by("customer_id", maintain_order=True)  # the transitions name it so
        .agg(
            pl.col("rule_id").str.join(MOVE_SEPARATOR).alias("rules"),
            # a move's reason names the rule it explains; moves without one (initial) are left out
            pl.concat_str(pl.col("rule_id"), pl.lit(": "), pl.col("reason"))
            .filter(pl.col("reason").fill_null("") != "")
            .str.join(MOVE_SEPARATOR)
            .alias("reason"),
            pl.concat_list(pl.col("rule_id"), pl.col("to_stage")).alias("path"),
        )
    )
    state = result.engine.state.select(
        ROW,
        pl.col(ID).alias("customer_id"),
        pl.col(PREVIOUS_STAGE).alias("stage_before"),
        pl.col(STAGE).alias("stage"),
    ).sort(ROW)
    return (
        state.join(moves, on="customer_id", how="left", maintain_order="left")
        .with_columns(
            pl.col("rules").fill_null(""),
            pl.col("reason").fill_null(""),
            pl.col("path").fill_null(pl.lit([], dtype=pl.List(pl.List(pl.String)))),
        )
        .drop("customer_id")
    )


def _stage_moves(table: pl.DataFrame) -> pl.DataFrame:
    return (
        table.filter(pl.col("change") == STAGE_CHANGE)
        .group_by("old_stage", "new_stage")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .sort(["customers", "old_stage", "new_stage"], descending=[True, False, False])
    )


def _rule_moves(old: Day, new: Day) -> pl.DataFrame:
    """Moves by rule (initial assignments included) in each run, and the difference."""
    return (
        old.moves.rename({"customers": "old"})
        .join(new.moves.rename({"customers": "new"}), on="rule_id", how="full", coalesce=True)
        .with_columns(pl.col("old", "new").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("new") - pl.col("old")).alias("delta"))
        .sort(
            [pl.col("delta").abs(), pl.col("new"), pl.col("rule_id")],
            descending=[True, True, False],
        )
    )


# -- what changed between the files ---------------------------------------------------------


def rule_changes(old: Rules, new: Rules) -> list[RuleChange]:
    """Transitions, derived values, metrics, stages, segments, the scorecard and settings
    added, removed or changed."""
    # each section's items by id (or name), as the fields that count for a change
    sections: dict[str, Callable[[Rules], dict[str, dict[str, Any]]]] = {
        "transitions": lambda r: {t.id: _transition_fields(t) for t in r.transitions},
        "derived": lambda r: {k: {"expression": v} for k, v in r.derived.items()},
        "metrics": lambda r: {k: m.model_dump(exclude={"description"})
                              for k, m in r.metrics.items()},
        "stages": lambda r: {s.name: s.model_dump(exclude={"name", "description"})
                             for s in r.stages},
        "segments": lambda r: {s.name: _segment_fields(s) for s in r.segments},
        "scorecard": lambda r: ({} if r.scorecard is None
                                else {"scorecard": r.scorecard.model_dump()}),
        "settings": lambda r: {"settings": _settings(r)},
    }
    changes: list[RuleChange] = []
    for section, items in sections.items():
        changes += _named(section, items(old), items(new))
    # on a priority tie the rule written first wins, and the first segment whose `when`
    # holds takes a customer: the order of the kept ones matters
    changes += _order("transitions", [t.id for t in old.transitions],
                      [t.id for t in new.transitions])
    changes += _order("segments", [g.name for g in old.segments],
                      [g.name for g in new.segments])
    return changes


def _order(section: str, old: list[str], new: list[str]) -> list[RuleChange]:
    """An ``(order)`` change when the items both files have come in another order."""
    kept_old = [n for n in old if n in new]
    kept_new = [n for n in new if n in old]
    if kept_old == kept_new:
        return []
    return [RuleChange(section, "(order)", "changed",
                       (("order", _show(kept_old), _show(kept_new)),))]


def _transition_fields(t: Any) -> dict[str, Any]:
    return {"from": t.from_, "to": t.to, "when": t.when, "priority": t.priority}


def _segment_fields(s: Any) -> dict[str, Any]:
    """A segment as the diff compares it: its condition, its position among the others
    (file order chooses), its expected days, and its own rules by id."""
    return {"when": s.when, "expected_days": dict(s.expected_days),
            "transitions": {t.id: _transition_fields(t) for t in s.transitions},
            "ctas": {c.id: c.model_dump(exclude={"id", "description"}) for c in s.ctas}}


def _settings(rules: Rules) -> dict[str, Any]:
    return {
        "initial_stage": rules.initial_stage,
        "max_hops": rules.effective_max_hops,
        "timezone": rules.timezone,
        "columns": rules.columns.model_dump(),
    }


def _named(
    section: str, old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> list[RuleChange]:
    """Items by name: changed and removed in the old file's order, then the added ones."""
    out = []
    for name, fields in old.items():
        if name not in new:
            removed = tuple((key, _show(value), "") for key, value in fields.items())
            out.append(RuleChange(section, name, "removed", removed))
            continue
        details = tuple(
            (key, _show(fields.get(key)), _show(new[name].get(key)))
            for key in dict.fromkeys([*fields, *new[name]])
            if fields.get(key) != new[name].get(key)
        )
        if details:
            out.append(RuleChange(section, name, "changed", details))
    out += [
        RuleChange(section, name, "added", tuple((k, "", _show(v)) for k, v in fields.items()))
        for name, fields in new.items()
        if name not in old
    ]
    return out


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return str(value)


__all__ = ["RuleChange", "RulesDiff", "compare", "diff", "rule_changes"]
