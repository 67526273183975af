"""The CTA snapshot: each CTA's latest row, and the open CTAs' tasks, after a date.

The state keeps each date's CTA *events* (the CTAs its run created or closed,
`ctas/`, and their tasks, `tasks/`) and the hand actions recorded on it
(`cta_actions/`). A CTA's status on a date is its latest row up to it, with
the actions applied; reading that from the events means reading every
earlier date. So each run also writes the result, the *snapshot* of the
date (`cta_snapshot/`, `task_snapshot/`, see `lifecycle_cli.state.store`),
and the next run, the worklist and the hand-action commands read one
snapshot instead of the history:

    snapshot(date) = actions(date) applied to (snapshot(date before) + events(date))

It holds the latest row of *every* CTA ever created, closed ones included:
every id ever created is what keeps a rule to one CTA per visit, and the
report counts what was created and closed. The open CTAs come first, so a
reader that wants only them (the worklist) skips the closed ones' row groups
in the file. Tasks are kept for open CTAs only (with who marked them done):
nothing reads a closed CTA's tasks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from ..columns import CTA_SNAPSHOT_SCHEMA, OPEN, TASK_SNAPSHOT_SCHEMA
from .actions import apply_actions, empty_actions
from .decide import latest_ctas


@dataclass(frozen=True)
class CtaSnapshot:
    """Each CTA's latest row (open ones first) and the open CTAs' tasks, on one date."""

    ctas: pl.DataFrame  # CTA_SNAPSHOT_SCHEMA
    tasks: pl.DataFrame  # TASK_SNAPSHOT_SCHEMA
    # the hand actions of the date that found their CTA (or task) no longer open
    skipped: pl.DataFrame = field(default_factory=empty_actions)

    @property
    def open(self) -> pl.DataFrame:
        return self.ctas.filter(pl.col("status") == OPEN)


def conform(frame: pl.DataFrame | pl.LazyFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """``frame`` with exactly ``schema``'s columns and types (missing ones empty): what a
    state written by an older version lacks, and the same types after a read and a write."""
    lazy = frame.lazy()
    have = lazy.collect_schema()
    return lazy.select(
        (pl.col(c) if c in have else pl.lit(None)).cast(t).alias(c) for c, t in schema.items()
    ).collect()


def _arrange(ctas: pl.DataFrame) -> pl.DataFrame:
    """The open CTAs first, each part in its own order."""
    is_open = pl.col("status") == OPEN
    return pl.concat([ctas.filter(is_open), ctas.filter(~is_open.fill_null(False))])


def empty() -> CtaSnapshot:
    return CtaSnapshot(pl.DataFrame(schema=CTA_SNAPSHOT_SCHEMA),
                       pl.DataFrame(schema=TASK_SNAPSHOT_SCHEMA))


def make(ctas: pl.DataFrame | pl.LazyFrame | None,
         tasks: pl.DataFrame | pl.LazyFrame | None) -> CtaSnapshot:
    """A snapshot of these frames, in the snapshot's columns and order."""
    if ctas is None:
        return empty()
    tasks = pl.DataFrame(schema=TASK_SNAPSHOT_SCHEMA) if tasks is None else tasks
    return CtaSnapshot(_arrange(conform(ctas, CTA_SNAPSHOT_SCHEMA)),
                       conform(tasks, TASK_SNAPSHOT_SCHEMA))


def after(before: CtaSnapshot | None, events: pl.DataFrame, tasks: pl.DataFrame | None,
          actions: pl.DataFrame | None, day: dt.date) -> CtaSnapshot:
    """The snapshot after ``day``: ``before`` (the snapshot of the date before, None: no
    CTAs yet), the events of the days since (``events``, in date order, and the ``tasks`` of
    the CTAs they created), then the hand actions recorded on ``day``."""
    before = before or empty()
    events = conform(events, CTA_SNAPSHOT_SCHEMA)
    if events.height and not events["as_of"].is_sorted():
        events = events.sort("as_of", maintain_order=True)
    today = events.unique(subset="cta_id", keep="last", maintain_order=True)
    ctas = latest_ctas(before.ctas, today).select(list(CTA_SNAPSHOT_SCHEMA))
    new_tasks = conform(tasks, TASK_SNAPSHOT_SCHEMA) if tasks is not None else None
    open_ids = ctas.filter(pl.col("status") == OPEN)["cta_id"].implode()
    task_rows = before.tasks if new_tasks is None else pl.concat([before.tasks, new_tasks])
    task_rows = task_rows.filter(pl.col("cta_id").is_in(open_ids))
    applied = apply_actions(ctas, task_rows, actions, day)
    assert applied.tasks is not None
    return CtaSnapshot(_arrange(applied.ctas), applied.tasks, applied.skipped)


def with_actions(snap: CtaSnapshot, actions: pl.DataFrame, day: dt.date) -> CtaSnapshot:
    """``snap`` (a date's snapshot) with more hand actions recorded on that date: the same as
    applying all of the date's actions at once (see `lifecycle_cli.ctas.actions`)."""
    applied = apply_actions(snap.ctas, snap.tasks, actions, day)
    assert applied.tasks is not None
    return CtaSnapshot(_arrange(applied.ctas), applied.tasks, applied.skipped)
