"""CTAs handled by people: closed, snoozed until a date, reassigned, tasks marked done.

An *action* is one row of `CTA_ACTION_SCHEMA`: who did what to which CTA, and
when. It is recorded on the state's date whose worklist it acted on (the
state's latest date when it was made), and it takes effect after that date's
run: a date's CTAs are the run's events, then the date's actions in the order
they were made. So a re-run of the date (or a backfill over it) applies them
again to what the run decided, and the next run starts from their result:

- ``close``: the CTA closes (``close_reason`` ``by hand: <reason>``); its id
  stays in the state, so its rule creates nothing more for that visit;
- ``snooze``: the CTA (and its tasks) leave the worklist until ``until``; a
  due date before it moves to it (a snooze never brings a due date forward);
- ``assign``: the CTA gets a new owner, and so do its tasks that were its
  owner's; later runs keep it, and a CTA closed later keeps it too;
- ``done``: one task of the CTA leaves the worklist.

An action finds its CTA open, or is skipped (the CTA closed in the meantime:
a re-run closed it at the end of its visit, or an earlier action closed it).

Applying actions is a fold in the order they were recorded (the order of the
date's `cta_actions` file; their timestamps say when, but a clock may step
back), done in rounds: round ``r`` applies every CTA's ``r``-th action at
once (a Python loop over rounds, not over CTAs; a CTA rarely gets more than
one action a day). So applying a date's actions at once, or some now and the
rest later, gives the same CTAs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from ..columns import CLOSED, CTA_ACTION_SCHEMA, CTA_SNAPSHOT_SCHEMA, OPEN, TASK_SNAPSHOT_SCHEMA
from ..errors import Problem
from ..suggest import did_you_mean

CLOSE, SNOOZE, ASSIGN, DONE = "close", "snooze", "assign", "done"
ACTIONS = (CLOSE, SNOOZE, ASSIGN, DONE)
BY_HAND = "by hand"

_ROUND = "__round"


def empty_actions() -> pl.DataFrame:
    return pl.DataFrame(schema=CTA_ACTION_SCHEMA)


def action_rows(
    as_of: dt.date,
    at: dt.datetime,
    by: str,
    action: str,
    cta_ids: list[str],
    *,
    seqs: list[int] | None = None,
    until: dt.date | None = None,
    owner: str | None = None,
    reason: str | None = None,
    source: str = "",
) -> pl.DataFrame:
    """The rows of one command's action on each of ``cta_ids`` (``done``: on each of
    ``seqs`` of the one CTA)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    ids = [cta_ids[0]] * len(seqs) if seqs is not None else cta_ids
    n = len(ids)
    return pl.DataFrame({
        "as_of": [as_of] * n, "at": [at] * n, "by": [by] * n, "action": [action] * n,
        "cta_id": ids, "seq": seqs if seqs is not None else [None] * n,
        "until": [until] * n, "owner": [owner] * n, "reason": [reason] * n,
        "source": [source] * n,
    }, schema=CTA_ACTION_SCHEMA)


def close_reason(reason: pl.Expr) -> pl.Expr:
    """``by hand: <reason>`` (``by hand`` without one)."""
    text = reason.str.strip_chars()
    return (pl.when(text.is_null() | (text == "")).then(pl.lit(BY_HAND))
            .otherwise(pl.lit(BY_HAND + ": ") + text))


@dataclass(frozen=True)
class Applied:
    """CTAs and open tasks after a date's actions, and the actions that found nothing to do."""

    ctas: pl.DataFrame  # CTA_SNAPSHOT_SCHEMA
    tasks: pl.DataFrame | None  # TASK_SNAPSHOT_SCHEMA (None: not asked for)
    skipped: pl.DataFrame  # CTA_ACTION_SCHEMA


def apply_actions(ctas: pl.DataFrame, tasks: pl.DataFrame | None, actions: pl.DataFrame | None,
                  day: dt.date) -> Applied:
    """``actions`` (recorded on ``day``) applied in their order to ``ctas`` (each CTA's latest
    row, CTA_SNAPSHOT_SCHEMA) and ``tasks`` (the open CTAs' tasks, TASK_SNAPSHOT_SCHEMA).
    The rows keep their order; tasks of CTAs closed by hand leave ``tasks``."""
    if actions is None or actions.height == 0:
        return Applied(ctas, tasks, empty_actions())
    acts = actions.select(list(CTA_ACTION_SCHEMA)).with_columns(
        pl.int_range(pl.len()).over("cta_id").alias(_ROUND))
    ids = acts["cta_id"].unique().implode()
    touched = ctas.filter(pl.col("cta_id").is_in(ids))
    mine = (tasks if tasks is not None else pl.DataFrame(schema=TASK_SNAPSHOT_SCHEMA)).filter(
        pl.col("cta_id").is_in(ids))
    skipped: list[pl.DataFrame] = []
    today = pl.lit(day, dtype=pl.Date)
    rounds: int = acts.select(pl.col(_ROUND).max()).item() + 1
    for r in range(rounds):
        act = acts.filter(pl.col(_ROUND) == r)
        # the CTA must be open now; a task must be one of its open tasks, not done yet
        state = act.join(touched.select("cta_id", pl.col("status").alias("__status"),
                                        pl.col("owner").alias("__old_owner")),
                         on="cta_id", how="left", maintain_order="left")
        task_open = state.join(
            mine.filter(pl.col("done_on").is_null()).select("cta_id", "seq",
                                                            pl.lit(True).alias("__task")),
            on=["cta_id", "seq"], how="left", maintain_order="left")["__task"].fill_null(False)
        state = state.with_columns(task_open.alias("__task"))
        applies = (pl.col("__status") == OPEN) & ((pl.col("action") != DONE) | pl.col("__task"))
        skipped.append(state.filter(~applies.fill_null(False)).select(list(CTA_ACTION_SCHEMA)))
        state = state.filter(applies.fill_null(False))
        touched = _on_ctas(touched, state.filter(pl.col("action") != DONE), today)
        mine = _on_tasks(mine, state, today)
    # rows keep their places, so actions applied at once or one by one give the same frames
    ctas = ctas.update(touched, on="cta_id", include_nulls=True)
    if tasks is not None:
        closed = touched.filter(pl.col("status") != OPEN)["cta_id"].implode()
        tasks = tasks.update(mine.select(tasks.columns), on=["cta_id", "seq"],
                             include_nulls=True).filter(~pl.col("cta_id").is_in(closed))
    return Applied(ctas, tasks, pl.concat(skipped) if skipped else empty_actions())


def _on_ctas(touched: pl.DataFrame, act: pl.DataFrame, today: pl.Expr) -> pl.DataFrame:
    """One round's close, snooze and assign actions on the CTAs they name (one each)."""
    if act.height == 0:
        return touched
    helpers = {"action": "__action", "by": "__by", "at": "__at", "until": "__until",
               "owner": "__new_owner", "reason": "__reason"}
    joined = touched.join(act.select("cta_id", *helpers).rename(helpers), on="cta_id",
                          how="left", maintain_order="left")
    action = pl.col("__action")
    acted = action.is_not_null()

    def when(name: str, then: pl.Expr, column: str) -> pl.Expr:
        return pl.when(action == name).then(then).otherwise(pl.col(column)).alias(column)

    return joined.with_columns(
        when(CLOSE, pl.lit(CLOSED), "status"),
        when(CLOSE, today, "closed_on"),
        when(CLOSE, close_reason(pl.col("__reason")), "close_reason"),
        when(SNOOZE, pl.col("__until"), "snoozed_until"),
        when(SNOOZE, pl.max_horizontal("due_on", "__until"), "due_on"),
        when(ASSIGN, pl.col("__new_owner"), "owner"),
        pl.when(acted).then(pl.col("__by")).otherwise(pl.col("updated_by")).alias("updated_by"),
        pl.when(acted).then(pl.col("__at")).otherwise(pl.col("updated_at")).alias("updated_at"),
        pl.when(acted).then(today).otherwise(pl.col("as_of")).alias("as_of"),
    ).select(list(CTA_SNAPSHOT_SCHEMA))


def _on_tasks(tasks: pl.DataFrame, act: pl.DataFrame, today: pl.Expr) -> pl.DataFrame:
    """One round's actions on the tasks: done marks one; assign moves the tasks that were
    the CTA's owner's; snooze moves the due dates of those not done."""
    if act.height == 0 or tasks.height == 0:
        return tasks
    done = act.filter(pl.col("action") == DONE).select(
        "cta_id", "seq", pl.col("by").alias("__done_by"))
    per_cta = act.filter(pl.col("action") != DONE).select(
        "cta_id", pl.col("action").alias("__action"), pl.col("until").alias("__until"),
        pl.col("__old_owner"), pl.col("owner").alias("__new_owner"))
    joined = (tasks.join(done, on=["cta_id", "seq"], how="left", maintain_order="left")
              .join(per_cta, on="cta_id", how="left", maintain_order="left"))
    action = pl.col("__action")
    not_done = pl.col("done_on").is_null()
    return joined.with_columns(
        pl.when(pl.col("__done_by").is_not_null()).then(today).otherwise(pl.col("done_on"))
        .alias("done_on"),
        pl.coalesce(pl.col("__done_by"), pl.col("done_by")).alias("done_by"),
        pl.when((action == ASSIGN) & pl.col("owner").eq_missing(pl.col("__old_owner")))
        .then(pl.col("__new_owner")).otherwise(pl.col("owner")).alias("owner"),
        pl.when((action == SNOOZE) & not_done).then(pl.max_horizontal("due_on", "__until"))
        .otherwise(pl.col("due_on")).alias("due_on"),
    ).select(tasks.columns)


# -- checking a command's action against the CTAs it names ------------------------------------

@dataclass(frozen=True)
class Checked:
    """What a command's action will do: the CTAs (and tasks) it acts on, what needs nothing
    (already closed, already that owner's, already done), and the mistakes."""

    cta_ids: list[str]
    seqs: list[int] | None
    unchanged: list[str]
    problems: list[Problem]


def check_action(ctas: pl.DataFrame, tasks: pl.DataFrame, action: str, cta_ids: list[str], *,
                 seqs: list[int] | None = None, owner: str | None = None) -> Checked:
    """Check ``action`` on ``cta_ids`` against ``ctas`` (each CTA's latest row) and ``tasks``
    (the open CTAs' tasks): the ids the user typed, so a loop over them is fine."""
    found = {row["cta_id"]: row for row in
             ctas.filter(pl.col("cta_id").is_in(cta_ids)).iter_rows(named=True)}
    acting: list[str] = []
    unchanged: list[str] = []
    problems: list[Problem] = []
    for cta_id in dict.fromkeys(cta_ids):
        row = found.get(cta_id)
        if row is None:
            problems.append(Problem(f"the state holds no CTA '{cta_id}'",
                                    hint=_closest_id(ctas, cta_id)))
        elif row["status"] != OPEN:
            closed = f"'{cta_id}' closed on {row['closed_on']} ({row['close_reason']})"
            if action == CLOSE:
                unchanged.append(f"{closed}: nothing to do")
            else:
                problems.append(Problem(f"{closed}; a closed CTA cannot be {_DONE_TO[action]}"))
        elif action == ASSIGN and owner is not None and row["owner"] == owner:
            unchanged.append(f"'{cta_id}' is {owner}'s already")
        else:
            acting.append(cta_id)
    if action != DONE or not acting:
        return Checked(acting, None, unchanged, problems)
    cta_id, wanted = acting[0], list(dict.fromkeys(seqs or []))
    mine = {r["seq"]: r for r in tasks.filter(pl.col("cta_id") == cta_id).iter_rows(named=True)}
    doing: list[int] = []
    for seq in wanted:
        task = mine.get(seq)
        if task is None:
            listed = "; ".join(f"{s}. {t['task']}" for s, t in sorted(mine.items()))
            problems.append(Problem(
                f"CTA '{cta_id}' has no task {seq}",
                hint=f"its tasks: {listed}" if listed else "it has no tasks (no playbook)"))
        elif task["done_on"] is not None:
            unchanged.append(f"task {seq} of '{cta_id}' was done on {task['done_on']} "
                             f"by {task['done_by']}")
        else:
            doing.append(seq)
    return Checked([cta_id] if doing else [], doing, unchanged, problems)


_DONE_TO = {SNOOZE: "snoozed", ASSIGN: "reassigned", DONE: "marked done", CLOSE: "closed"}


def _closest_id(ctas: pl.DataFrame, cta_id: str) -> str | None:
    """A "did you mean" among the CTAs of the same customer (the id's second part), else
    among the open ones; ids are many, so difflib sees only a few thousand."""
    parts = cta_id.split(":")
    pool = ctas
    if len(parts) > 1 and parts[1]:
        same = ctas.filter(pl.col("customer_id").cast(pl.String) == parts[1])
        pool = same if same.height else ctas.filter(pl.col("status") == OPEN)
    names = pool["cta_id"].head(5000).to_list()
    hint = did_you_mean(cta_id, names)
    if hint is None and len(parts) < 4:
        hint = "a CTA id is rule:customer:stage:visit-start, as `lifecycle ctas` lists it"
    return hint
