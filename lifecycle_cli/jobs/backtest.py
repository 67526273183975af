"""`lifecycle backtest`: replay the rules over history and score their predictions.

A backtest is a backfill into nothing: the same replay of days
(`jobs.backfill.replay_days`: `run_day` for each as-of date, starting where
the day before left, the usage grouped once into per-day partial aggregates),
with no state folder read or written. Each day, the customers who enter a
stage of a prediction (``predictions:`` in the rules) are flagged; then the
flags are scored against the outcomes file (`report.backtest` defines the
measures)::

    from lifecycle_cli.jobs.backtest import backtest

    result = backtest([("rules.yaml", rules)], "customers.csv", ["usage.csv"],
                      dt.date(2024, 1, 1), dt.date(2024, 6, 30), "churn_events.csv")
    result.summary  # precision, recall, lead time per prediction

With two rules files, both replay the same days; when they read the exports
alike (`day.pipeline.reads_alike`) the exports are read and the usage
grouped once, and each day's metrics are merged once for both.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import polars as pl

from ..columns import FLAG_SCHEMA, ID, MISSED_SCHEMA, OUTCOME_DATE, STAGE
from ..day.load import Loaded, Progress, Tables, UsageSpecs, load, no_progress
from ..day.pipeline import Day, reads_alike
from ..day.start import Start
from ..errors import LifecycleError, Problem, RulesError
from ..inputs.outcomes import Outcomes, read_outcomes
from ..metrics.compute import MetricsResult
from ..report.backtest import Backtest, PredictionScore, concat, score, summary_frame
from ..rules.model import Rules
from ..suggest import did_you_mean
from .backfill import day_metrics, days_between, replay_days

T = TypeVar("T")
FLAG_COLUMNS = {ID: pl.String(), "flagged_on": pl.Date(), "stage": pl.String()}


def backtest(
    rule_sets: Sequence[tuple[str, Rules]],
    customers: str | Path,
    usage: UsageSpecs,
    start: dt.date,
    end: dt.date,
    outcomes_path: str | Path,
    *,
    outcome: str | None = None,
    observed_until: dt.date | None = None,
    encoding: str | None = None,
    progress: Progress = no_progress,
    tables: Tables | None = None,
    keep_stages: bool = False,
) -> Backtest:
    """Replay every day from ``start`` to ``end`` with each of ``rule_sets`` (name, rules)
    and score their predictions against the outcomes file.

    ``outcome``: every row of the outcomes file is this outcome (its outcome column, if
    any, is not read); when the file has no outcome column and the predictions name one
    outcome, every row is that one. ``observed_until``: the last day the outcomes file
    covers (default: its latest date). ``keep_stages``: keep each day's stage table
    (``Backtest.stages``; for tests). Nothing is written.
    """
    began = time.monotonic()
    days = days_between(start, end)
    _check_predictions(rule_sets)
    first = rule_sets[0][1]
    named = {p.outcome for _, rules in rule_sets for p in rules.predictions}
    every_row = outcome if outcome is not None else (next(iter(named)) if len(named) == 1
                                                     else None)
    progress("reading the outcomes")
    outcomes = read_outcomes(outcomes_path, first, outcome=every_row,
                             override=outcome is not None, observed_until=observed_until,
                             encoding=encoding)
    _check_outcomes(rule_sets, outcomes)
    warnings = list(outcomes.warnings)
    notes = []
    if outcomes.fixed is not None and outcome is None:
        notes.append(f"{outcomes.path} has no outcome column: every row counts as "
                     f"'{outcomes.fixed}'")

    runs: list[_Run] = []
    several = len(rule_sets) > 1
    for name, rules in rule_sets:
        alike = next((r for r in runs if reads_alike(r.rules, rules)), None)
        if alike is not None:
            runs.append(_Run(name, rules, alike.loaded, alike.metrics))
            continue
        loaded = _labelled(name if several else None, functools.partial(
            load, rules, customers, usage, encoding=encoding, progress=progress,
            tables=tables))
        runs.append(_Run(name, rules, loaded,
                         day_metrics(rules, loaded, start, end, progress=progress)))
    for run in runs:
        # the export's stages are today's: they speak for no replayed day (as in a backfill)
        run.days = replay_days(run.rules, run.loaded, days, Start(use_export_stages=False),
                               run.metrics)
    for i in range(len(days)):
        progress("replaying days", i, len(days), "days")
        for run in runs:
            result = _labelled(run.name if several else None,
                               functools.partial(next, run.days))
            run.flag(result, keep_stages)
    progress("replaying days", len(days), len(days), "days")

    progress("scoring the predictions")
    scores: list[PredictionScore] = []
    for run in runs:
        for prediction in run.rules.predictions:
            flags = concat(run.flags[prediction.label], FLAG_COLUMNS)
            scores.append(score(run.name, prediction, flags, outcomes.table, run.ids, start,
                                end, outcomes.observed_until))
    ids = runs[0].ids
    unknown = outcomes.table.filter(
        pl.col(OUTCOME_DATE).is_between(pl.lit(start + dt.timedelta(days=1)), pl.lit(end))
        & ~pl.col(ID).is_in(ids.implode()))
    if unknown.height:
        shown = ", ".join(unknown[ID].unique(maintain_order=True).head(5).to_list())
        warnings.append(
            f"{unknown.height:,} outcome(s) in the period are of customers that the customers "
            f"export does not have ({shown}{' ...' if unknown[ID].n_unique() > 5 else ''}): "
            "they are not scored")
    return Backtest(
        start=start, end=end, observed_until=outcomes.observed_until,
        outcomes_path=outcomes.path, customers=ids.len(),
        rules=[run.name for run in runs],
        summary=summary_frame(scores),
        flags=concat([s.flags for s in scores], FLAG_SCHEMA),
        missed=concat([s.missed for s in scores], MISSED_SCHEMA),
        warnings=warnings, notes=notes, seconds=time.monotonic() - began,
        stages={run.name: run.stages for run in runs} if keep_stages else {},
    )


class _Run:
    """One rules file's replay: its days as they come, and the flags they raise."""

    def __init__(self, name: str, rules: Rules, loaded: Loaded,
                 metrics: Callable[[dt.date], MetricsResult | None]) -> None:
        self.name, self.rules, self.loaded, self.metrics = name, rules, loaded, metrics
        self.days: Iterator[Day] = iter(())
        self.ids = loaded.typed[ID].cast(pl.String)
        # per prediction: who was in one of its stages at the end of the day before
        self.held = {p.label: pl.Series(dtype=pl.Boolean) for p in rules.predictions}
        self.flags: dict[str, list[pl.DataFrame]] = {p.label: [] for p in rules.predictions}
        self.stages: dict[dt.date, pl.DataFrame] = {}

    def flag(self, day: Day, keep_stages: bool) -> None:
        """The customers entering a prediction's stages on the day: in one of them at its
        end, in none of them the day before (the replay's first day: everyone in one)."""
        final = day.final.select(pl.col(ID).cast(pl.String), STAGE)
        for prediction in self.rules.predictions:
            held = final[STAGE].is_in(prediction.stages).fill_null(False)
            before = self.held[prediction.label]
            entered = held if before.len() == 0 else held & ~before
            self.held[prediction.label] = held
            if entered.any():
                self.flags[prediction.label].append(final.filter(entered).select(
                    ID, pl.lit(day.as_of, dtype=pl.Date).alias("flagged_on"), STAGE))
        if keep_stages:
            self.stages[day.as_of] = day.stages


def _check_predictions(rule_sets: Sequence[tuple[str, Rules]]) -> None:
    """Every rules file has predictions to score."""
    problems = []
    for name, rules in rule_sets:
        if not rules.predictions:
            problems.append(Problem(
                "the rules have no predictions to score", file=name,
                hint="add a `predictions:` section, e.g. predictions: [{stage: Will Churn, "
                "outcome: churned, horizon_days: 90}] (docs/rules.md)"))
    if problems:
        raise RulesError(problems)


def _check_outcomes(rule_sets: Sequence[tuple[str, Rules]], outcomes: Outcomes) -> None:
    """Every predicted outcome is in the outcomes file (else nothing could ever be a hit:
    a misspelt name, most likely)."""
    found = outcomes.names
    problems = [
        rules.problem(
            f"no row of the outcomes file {outcomes.path} has the outcome '{p.outcome}'",
            "predictions", i, "outcome", rule_id=p.id,
            hint=did_you_mean(p.outcome, found) or "outcomes in the file: "
            + ", ".join(found[:20]))
        for _, rules in rule_sets for i, p in enumerate(rules.predictions)
        if p.outcome not in found
    ]
    if problems:
        raise RulesError(problems)


def _labelled(name: str | None, step: Callable[[], T]) -> T:
    """Run ``step``; with ``name`` (two rules files), problems that name no file say which
    rules were in play."""
    try:
        return step()
    except LifecycleError as error:
        if name is None:
            raise
        problems = [p if p.file is not None else dataclasses.replace(
            p, message=f"{p.message} [with the rules {name}]") for p in error.problems]
        raise type(error)(problems) from None
