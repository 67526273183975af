"""A backtest's scores: the flags of each predicting stage against what really happened.

Definitions (docs/backtest.md says the same, with an example):

- a **flag** is a customer entering a stage of a prediction on a replayed day
  ``d`` in [from, to]: the customer is in one of the prediction's stages at the
  end of ``d`` and was in none of them at the end of ``d - 1``. The replay
  starts from nothing, so on ``from`` every customer already in such a stage
  is flagged;
- a flag is a **hit** when the customer has the predicted outcome in
  (d, d + horizon]; otherwise a **false alarm** when d + horizon is on or
  before the last day the outcomes file covers, and **unresolved** when it is
  after (the file cannot tell yet: it is censored, not false);
- **precision** = hits / (hits + false alarms), per flag: each entry is a call
  a CSM acts on (a CTA, a save play), so a customer flagged twice is judged
  twice;
- an **outcome** (a customer, the predicted outcome, a date ``t``) is scored
  when ``t`` is in (from, to]: a replayed day precedes it. It is **caught**
  when a flag of that customer falls in [t - horizon, t - 1]; **recall** =
  caught / scored outcomes. Outcomes of customers the customers export lacks
  are not scored (they could never be flagged);
- **lead time**: for each caught outcome, the days from the earliest flag
  within its horizon to the outcome; the summary gives their median;
- **missed**: scored outcomes not caught; ``never_flagged`` when the customer
  had no flag at all before the outcome in the replay (otherwise it was
  flagged too early: ``last_flagged_on``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import FLAG_SCHEMA, ID, MISSED_SCHEMA, OUTCOME, OUTCOME_DATE
from ..rules.model import Prediction

HIT, FALSE_ALARM, UNRESOLVED = "hit", "false_alarm", "unresolved"

# the summary's columns after rules and prediction, with what a person calls them and
# their kind: count, share, days or text
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("stages", "stages", "text"),
    ("outcome", "outcome", "text"),
    ("horizon_days", "horizon (days)", "count"),
    ("flags", "flags", "count"),
    ("flagged_customers", "customers flagged", "count"),
    ("hits", "hits", "count"),
    ("false_alarms", "false alarms", "count"),
    ("unresolved", "unresolved (horizon past the outcomes file)", "count"),
    ("precision", "precision", "share"),
    ("outcomes", "outcomes scored", "count"),
    ("caught", "caught within the horizon", "count"),
    ("missed", "missed", "count"),
    ("never_flagged", "missed, never flagged", "count"),
    ("recall", "recall", "share"),
    ("median_lead_days", "median lead time (days)", "days"),
)
SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "rules": pl.String(), "prediction": pl.String(), "stages": pl.String(),
    "outcome": pl.String(), "horizon_days": pl.Int64(), "flags": pl.Int64(),
    "flagged_customers": pl.Int64(), "hits": pl.Int64(), "false_alarms": pl.Int64(),
    "unresolved": pl.Int64(), "precision": pl.Float64(), "outcomes": pl.Int64(),
    "caught": pl.Int64(), "missed": pl.Int64(), "never_flagged": pl.Int64(),
    "recall": pl.Float64(), "median_lead_days": pl.Float64(),
}


@dataclass
class Backtest:
    """Every rules file's predictions scored over one replay of the same days."""

    start: dt.date
    end: dt.date
    observed_until: dt.date  # the last day the outcomes file covers
    outcomes_path: Path
    customers: int
    rules: list[str]  # the rules files, as given, in order
    summary: pl.DataFrame  # SUMMARY_SCHEMA: a row per rules file and prediction
    flags: pl.DataFrame  # FLAG_SCHEMA
    missed: pl.DataFrame  # MISSED_SCHEMA
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the inputs were read
    seconds: float = 0.0
    # with ``keep_stages``: per rules file, each day's stage table (what a backfill records)
    stages: dict[str, dict[dt.date, pl.DataFrame]] = field(default_factory=dict)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def predictions(self) -> list[str]:
        """The predictions' names, in the order the rules files give them."""
        return list(dict.fromkeys(self.summary["prediction"].to_list()))

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """What ``--csv DIR`` writes: summary, flags, missed."""
        return {"summary": self.summary, "flags": self.flags, "missed": self.missed}

    def side_by_side(self, prediction: str) -> list[tuple[str, str, list[object]]]:
        """For one prediction: each measure (its label and kind) with its value under each
        rules file, in the order of ``rules`` (None where a file lacks the prediction)."""
        rows = self.summary.filter(pl.col("prediction") == prediction)
        by_rules = {r["rules"]: r for r in rows.iter_rows(named=True)}
        return [(label, kind, [by_rules.get(name, {}).get(column) for name in self.rules])
                for column, label, kind in MEASURES]


@dataclass(frozen=True)
class PredictionScore:
    """One prediction of one rules file, scored: a summary row, its flags, its misses."""

    summary: dict[str, object]
    flags: pl.DataFrame
    missed: pl.DataFrame


def score(rules_name: str, prediction: Prediction, flags: pl.DataFrame,
          outcomes: pl.DataFrame, customer_ids: pl.Series, start: dt.date, end: dt.date,
          observed_until: dt.date) -> PredictionScore:
    """Score one prediction. ``flags``: ``customer_id`` (text), ``flagged_on``, ``stage``;
    ``outcomes``: the outcomes file's table (``customer_id``, ``outcome``, ``date``);
    ``customer_ids``: the customers of the replay (text)."""
    horizon = prediction.horizon_days
    events = outcomes.filter(pl.col(OUTCOME) == prediction.outcome).select(
        ID, pl.col(OUTCOME_DATE).alias("outcome_on")).unique()
    flags = flags.select(pl.col(ID).cast(pl.String), "flagged_on", "stage")
    within = pl.col("outcome_on").is_between(
        pl.col("flagged_on") + pl.duration(days=1),
        pl.col("flagged_on") + pl.duration(days=horizon))
    first_hit = (
        flags.join(events, on=ID, how="inner").filter(within)
        .group_by(ID, "flagged_on").agg(pl.col("outcome_on").min())
    )
    resolved_by = pl.lit(observed_until, dtype=pl.Date)
    judged = flags.join(first_hit, on=[ID, "flagged_on"], how="left",
                        maintain_order="left").with_columns(
        pl.when(pl.col("outcome_on").is_not_null()).then(pl.lit(HIT))
        .when(pl.col("flagged_on") + pl.duration(days=horizon) <= resolved_by)
        .then(pl.lit(FALSE_ALARM))
        .otherwise(pl.lit(UNRESOLVED)).alias("verdict"),
        (pl.col("outcome_on") - pl.col("flagged_on")).dt.total_days().alias("lead_days"),
    )
    flag_table = judged.select(
        pl.lit(rules_name).alias("rules"), pl.lit(prediction.label).alias("prediction"),
        *[c for c in FLAG_SCHEMA if c not in ("rules", "prediction")],
    ).cast(pl.Schema(FLAG_SCHEMA)).sort("flagged_on", ID)

    known = pl.col(ID).is_in(customer_ids.cast(pl.String).implode())
    scored = events.filter(pl.col("outcome_on").is_between(
        pl.lit(start + dt.timedelta(days=1)), pl.lit(end)) & known)
    before = flags.join(scored, on=ID, how="inner").filter(
        pl.col("flagged_on") < pl.col("outcome_on"))
    per_outcome = before.group_by(ID, "outcome_on").agg(
        pl.col("flagged_on").filter(
            pl.col("flagged_on") >= pl.col("outcome_on") - pl.duration(days=horizon))
        .min().alias("earliest_in_horizon"),
        pl.col("flagged_on").max().alias("last_flagged_on"),
    )
    outcomes_scored = scored.join(per_outcome, on=[ID, "outcome_on"], how="left")
    caught = outcomes_scored.filter(pl.col("earliest_in_horizon").is_not_null())
    missed = outcomes_scored.filter(pl.col("earliest_in_horizon").is_null()).select(
        pl.lit(rules_name).alias("rules"), pl.lit(prediction.label).alias("prediction"),
        ID, pl.lit(prediction.outcome).alias("outcome"), "outcome_on", "last_flagged_on",
        pl.col("last_flagged_on").is_null().alias("never_flagged"),
    ).cast(pl.Schema(MISSED_SCHEMA)).sort("outcome_on", ID)

    counts = dict(judged.group_by("verdict").len().iter_rows())
    hits, false_alarms = counts.get(HIT, 0), counts.get(FALSE_ALARM, 0)
    median = caught.select(
        (pl.col("outcome_on") - pl.col("earliest_in_horizon")).dt.total_days()
        .cast(pl.Float64).median()).item()
    summary: dict[str, object] = {
        "rules": rules_name,
        "prediction": prediction.label,
        "stages": ", ".join(prediction.stages),
        "outcome": prediction.outcome,
        "horizon_days": horizon,
        "flags": flags.height,
        "flagged_customers": flags[ID].n_unique(),
        "hits": hits,
        "false_alarms": false_alarms,
        "unresolved": counts.get(UNRESOLVED, 0),
        "precision": hits / (hits + false_alarms) if hits + false_alarms else None,
        "outcomes": scored.height,
        "caught": caught.height,
        "missed": missed.height,
        "never_flagged": int(missed["never_flagged"].sum()),
        "recall": caught.height / scored.height if scored.height else None,
        "median_lead_days": median,
    }
    return PredictionScore(summary, flag_table, missed)


def summary_frame(scores: Sequence[PredictionScore]) -> pl.DataFrame:
    return pl.DataFrame([s.summary for s in scores], schema=SUMMARY_SCHEMA, orient="row")


def concat(frames: Sequence[pl.DataFrame], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.concat(frames) if frames else pl.DataFrame(schema=schema)


__all__ = ["FALSE_ALARM", "HIT", "MEASURES", "UNRESOLVED", "Backtest", "PredictionScore",
           "concat", "score", "summary_frame"]
