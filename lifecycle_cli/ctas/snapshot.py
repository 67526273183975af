"""The CTA snapshot: the CTAs a run needs, and the open CTAs' tasks, after a date.

The state keeps each date's CTA *events* (the CTAs its run created or closed,
`ctas/`, and their tasks, `tasks/`) and the hand actions recorded on it
(`cta_actions/`). A CTA's status on a date is its latest row up to it, with the
actions applied; reading that from the events means reading every earlier
date. So each run also writes what the next one needs, the *snapshot* of its
date (`cta_snapshot/`, `task_snapshot/`), and a run, the worklist and the
hand-action commands read one snapshot instead of the history:

    latest(date) = actions(date) applied to (snapshot(date before) + events(date))

A run needs, of every CTA ever created, the open ones (to close them, and for
the worklist) and the id of every other one *of a visit that is still going on*
(its rule must not create it again: one CTA per visit). A closed CTA whose
visit has ended can't come back (a new visit has a new id), so the snapshot
keeps only the *current* CTAs:

- every open CTA;
- the closed CTAs of the customer's current visit (closed by ``close_when`` or
  by hand while the visit goes on);

and each closed CTA whose visit ends goes, on that date, to the *archive*
(`cta_archive/`, kept for every date, like the events): its final row, for
the report's counts and `StateView.ctas` (each CTA's latest row = the
snapshot's + the archive's). So a snapshot stays the size of the open CTAs
(customers x rules at most), however long the history, and a nightly run
reads and writes the same amount every night.

One case brings an archived CTA back: a hand edit in the export that puts a
customer back into an old visit (the same stage and start date, or again a
stage without a date). A run looks those visits up in the archive
(`Start.archived`) and returns their CTAs to the snapshot, so the rule still
creates nothing for that visit.

The open CTAs come first in the snapshot, so a reader of the open ones only
(the worklist) skips the closed ones' row groups. Tasks are kept for open CTAs
only (with who marked them done): nothing reads a closed CTA's tasks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from ..columns import CTA_SNAPSHOT_SCHEMA, OPEN, TASK_SNAPSHOT_SCHEMA
from .actions import apply_actions, empty_actions
from .decide import latest_ctas

VISIT = ["customer_id", "stage", "stage_entered_at"]


def _empty_ctas() -> pl.DataFrame:
    return pl.DataFrame(schema=CTA_SNAPSHOT_SCHEMA)


@dataclass(frozen=True)
class CtaSnapshot:
    """The CTAs of one date (open ones first) and the open CTAs' tasks.

    ``ctas`` holds the current CTAs (see the module's docstring), or with ``complete``
    every CTA's latest row (rebuilt from the events of a state without snapshots).
    ``archived``: the CTAs whose visit ended on the date (what the date adds to the
    archive). ``skipped``: the date's hand actions that found their CTA (or task) no
    longer open."""

    ctas: pl.DataFrame  # CTA_SNAPSHOT_SCHEMA
    tasks: pl.DataFrame  # TASK_SNAPSHOT_SCHEMA
    archived: pl.DataFrame = field(default_factory=_empty_ctas)
    skipped: pl.DataFrame = field(default_factory=empty_actions)
    complete: bool = False

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
    """The open CTAs first, in the order they were created, then the closed ones by id: the
    same rows in the same order however a date's events and hand actions came."""
    is_open = (pl.col("status") == OPEN).fill_null(False)
    return pl.concat([ctas.filter(is_open), ctas.filter(~is_open).sort("cta_id")])


def empty() -> CtaSnapshot:
    return CtaSnapshot(_empty_ctas(), pl.DataFrame(schema=TASK_SNAPSHOT_SCHEMA))


def make(ctas: pl.DataFrame | pl.LazyFrame | None,
         tasks: pl.DataFrame | pl.LazyFrame | None, *, complete: bool = False) -> CtaSnapshot:
    """A snapshot of these frames, in the snapshot's columns and order."""
    if ctas is None:
        return empty()
    tasks = pl.DataFrame(schema=TASK_SNAPSHOT_SCHEMA) if tasks is None else tasks
    return CtaSnapshot(_arrange(conform(ctas, CTA_SNAPSHOT_SCHEMA)),
                       conform(tasks, TASK_SNAPSHOT_SCHEMA), complete=complete)


def current_visits(ctas: pl.DataFrame, stages: pl.DataFrame) -> pl.Series:
    """Whether each CTA's visit is its customer's visit in the stage table ``stages``."""
    mine = stages.filter(pl.col("customer_id").is_in(ctas["customer_id"].unique().implode()))
    visits = mine.select(pl.col("customer_id").cast(pl.String), "stage",
                         "stage_entered_at").with_columns(pl.lit(True).alias("__current"))
    return ctas.select(VISIT).join(visits, on=VISIT, how="left", nulls_equal=True,
                                   maintain_order="left")["__current"].fill_null(False)


def after(before: CtaSnapshot | None, events: pl.DataFrame, tasks: pl.DataFrame | None,
          actions: pl.DataFrame | None, day: dt.date, stages: pl.DataFrame | None = None
          ) -> CtaSnapshot:
    """The snapshot after ``day``: ``before`` (the snapshot of the date before, None: no
    CTAs yet), the events of the days since (``events``, in date order, and the ``tasks`` of
    the CTAs they created that are still open), then the hand actions recorded on ``day``.
    With ``stages``
    (the stage table after ``day``), the closed CTAs of visits that ended leave the
    snapshot for the archive; without, the snapshot keeps every CTA."""
    before = before or empty()
    today = _latest_events(events)
    ctas = latest_ctas(before.ctas, today).select(list(CTA_SNAPSHOT_SCHEMA))
    # the tasks of the CTAs open before, less those the events closed, and the new ones
    # (``tasks`` holds only those of CTAs still open after the events)
    closed_now = today.filter(pl.col("status") != OPEN)["cta_id"].implode()
    task_rows = before.tasks.filter(~pl.col("cta_id").is_in(closed_now))
    if tasks is not None:
        task_rows = pl.concat([task_rows, conform(tasks, TASK_SNAPSHOT_SCHEMA)])
    applied = apply_actions(ctas, task_rows, actions, day)
    assert applied.tasks is not None
    ctas, archived = applied.ctas, _empty_ctas()
    if stages is not None:  # the open ones stay; of the closed ones, those of visits going on
        is_open = pl.col("status") == OPEN
        closed = ctas.filter(~is_open)
        current = current_visits(closed, stages)
        ctas = pl.concat([ctas.filter(is_open), closed.filter(current)])
        archived = closed.filter(~current)
    return CtaSnapshot(_arrange(ctas), applied.tasks, archived, applied.skipped,
                       complete=before.complete and stages is None)


def _latest_events(events: pl.DataFrame) -> pl.DataFrame:
    """Each CTA's latest row among ``events`` (in date order)."""
    events = conform(events, CTA_SNAPSHOT_SCHEMA)
    if events.height and not events["as_of"].is_sorted():
        events = events.sort("as_of", maintain_order=True)
    return events.unique(subset="cta_id", keep="last", maintain_order=True)


def latest_after(before: pl.DataFrame | None, events: pl.DataFrame,
                 actions: pl.DataFrame | None, day: dt.date) -> pl.DataFrame:
    """The CTAs of :func:`after` without its tasks and before its archive: each CTA's latest
    row after ``day`` (``before``: the CTAs of the snapshot of the date before), the
    ``events`` then the hand actions of ``day`` applied (CTA_SNAPSHOT_SCHEMA, in no set
    order). Every open CTA of ``after``'s snapshot is here, the same row; the closed CTAs
    of ended visits too. For the readers of the CTAs alone (`check`): an action on a task
    never changes its CTA, so the tasks are neither read nor built."""
    before_ctas = _empty_ctas() if before is None else conform(before, CTA_SNAPSHOT_SCHEMA)
    ctas = latest_ctas(before_ctas, _latest_events(events)).select(list(CTA_SNAPSHOT_SCHEMA))
    return apply_actions(ctas, None, actions, day).ctas


def with_actions(snap: CtaSnapshot, actions: pl.DataFrame, day: dt.date) -> CtaSnapshot:
    """``snap`` (a date's snapshot) with more hand actions recorded on that date: the same as
    applying all of the date's actions at once (see `lifecycle_cli.ctas.actions`). An
    action changes no visit, so nothing leaves the snapshot."""
    applied = apply_actions(snap.ctas, snap.tasks, actions, day)
    assert applied.tasks is not None
    return CtaSnapshot(_arrange(applied.ctas), applied.tasks, snap.archived, applied.skipped,
                       snap.complete)
