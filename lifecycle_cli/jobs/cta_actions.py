"""CTAs handled by people, recorded in the state: what `lifecycle ctas close|snooze|assign|
done|import` do.

Each call takes the state's lock, reads the CTA snapshot of the state's latest
date (the worklist people act on), checks the action against it, and in one
transaction records the action in that date's `cta_actions` (who, when, what,
from which command or file line) and writes the date's new snapshot. A
mistake (an unknown id, a closed CTA, a task it doesn't have, a malformed
import) records nothing. See `lifecycle_cli.ctas.actions` for what each
action does, and how runs, re-runs and backfills keep them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from ..columns import CTA_ACTION_SCHEMA
from ..ctas import snapshot
from ..ctas.actions import ACTIONS, ASSIGN, CLOSE, DONE, SNOOZE, action_rows, check_action
from ..ctas.imports import columns_of, import_actions
from ..ctas.snapshot import CtaSnapshot
from ..errors import OptionError, Problem
from ..inputs.formats import read_table
from ..inputs.options import ReadOptions
from ..state.lock import lock
from ..state.store import INDEX, State, StateError, Transaction, collect_garbage
from ..state.view import StateView


def default_actor() -> str:
    """Who acts when ``--by`` isn't given: the operating system's user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER") or os.environ.get("LOGNAME") or str(os.getuid())


@dataclass
class ActionResult:
    """What a hand action (or an import) recorded, on which date, and what it left."""

    as_of: dt.date
    recorded: pl.DataFrame  # CTA_ACTION_SCHEMA
    unchanged: list[str] = field(default_factory=list)  # what needed nothing
    dry_run: bool = False
    # an import's rows that name CTAs (or tasks) the state doesn't hold, or that the CRM
    # has open and the state closed
    unknown: pl.DataFrame | None = None
    not_open: pl.DataFrame | None = None
    rows: int = 0  # an import's rows


def act(
    state_dir: str | Path,
    action: str,
    cta_ids: Sequence[str],
    *,
    by: str | None = None,
    reason: str | None = None,
    until: dt.date | None = None,
    owner: str | None = None,
    seqs: Sequence[int] | None = None,
    command: str = "lifecycle ctas",
) -> ActionResult:
    """Close, snooze, reassign CTAs or mark tasks done (``action``: close, snooze, assign,
    done), as of the state's latest date; ``done`` takes one CTA and its task ``seqs``."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    ids = [i.strip() for i in cta_ids if i.strip()]
    if not ids:
        raise OptionError("give the id of a CTA, as `lifecycle ctas` lists it")
    if action == CLOSE and not (reason or "").strip():
        raise OptionError(Problem("--reason is empty", hint="say why the CTA is closed"))
    if action == ASSIGN and not (owner or "").strip():
        raise OptionError(Problem("--owner is empty", hint="name the new owner"))
    if action == DONE and (len(ids) != 1 or not seqs):
        raise OptionError(Problem("done takes one CTA id and the numbers of its tasks",
                                  hint="lifecycle ctas done ID 1 2 --state DIR"))
    who = (by or "").strip() or default_actor()

    def build(snap: CtaSnapshot, as_of: dt.date, at: dt.datetime, known: Known
              ) -> tuple[pl.DataFrame, ActionResult]:
        if action == SNOOZE and (until is None or until < as_of):
            raise OptionError(Problem(
                f"--until {until} is before the state's date {as_of}" if until else
                "--until is missing",
                hint=f"snooze until a date after {as_of} (the date itself wakes it)"))
        checked = check_action(known(ids), snap.tasks, action, ids,
                               seqs=list(seqs) if seqs else None,
                               owner=owner.strip() if owner else None)
        if checked.problems:  # ids and task numbers from the command line
            raise OptionError(checked.problems)
        rows = (action_rows(as_of, at, who, action, checked.cta_ids, seqs=checked.seqs,
                            until=until, owner=owner.strip() if owner else None,
                            reason=reason.strip() if reason else None, source=command)
                if checked.cta_ids else pl.DataFrame(schema=CTA_ACTION_SCHEMA))
        return rows, ActionResult(as_of, rows, checked.unchanged)

    return _record(Path(state_dir), command, build, dry_run=False)


def import_statuses(
    state_dir: str | Path,
    path: str | Path,
    *,
    by: str | None = None,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
    dry_run: bool = False,
    command: str = "lifecycle ctas import",
) -> ActionResult:
    """Record the changes that a CRM's export of CTA statuses (``path``) makes to the
    state's CTAs, as hand actions (see `lifecycle_cli.ctas.imports`)."""
    path = Path(path)
    frame = read_table(path, ReadOptions(encoding=encoding))
    who = (by or "").strip() or default_actor()

    def build(snap: CtaSnapshot, as_of: dt.date, at: dt.datetime, known: Known
              ) -> tuple[pl.DataFrame, ActionResult]:
        column = frame[columns_of(frame, path, mapping)["cta_id"]].cast(pl.String)
        ids: list[str] = column.str.strip_chars().drop_nulls().unique().to_list()
        done = import_actions(frame, path, replace(snap, ctas=known(ids)), as_of, at, who,
                              mapping=mapping)
        result = ActionResult(as_of, done.actions, dry_run=dry_run, unknown=done.unknown,
                              not_open=done.not_open, rows=done.rows)
        if done.unchanged:
            result.unchanged.append(f"{done.unchanged:,} row(s) change nothing")
        return done.actions, result

    return _record(Path(state_dir), command, build, dry_run=dry_run)


# the date's CTAs with those of these ids that the state archived (their visit ended)
Known = Callable[[list[str]], pl.DataFrame]
Build = Callable[[CtaSnapshot, dt.date, dt.datetime, Known],
                 tuple[pl.DataFrame, ActionResult]]


def _record(state_dir: Path, command: str, build: Build, *, dry_run: bool) -> ActionResult:
    hint = "give the folder that `lifecycle run --state` or `lifecycle backfill` wrote"
    if not (state_dir / INDEX).exists():
        raise StateError(Problem(f"no lifecycle state here: the folder has no {INDEX}",
                                 file=str(state_dir), hint=hint))
    with lock(state_dir, command):
        store = State.open(state_dir)
        as_of = store.latest
        if as_of is None:
            raise StateError(Problem("the state holds no runs yet: there are no CTAs to handle",
                                     file=str(state_dir)))
        collect_garbage(store)
        view = StateView(store)
        snap = view.snapshot(as_of)

        def known(ids: list[str]) -> pl.DataFrame:
            missing = sorted(set(ids) - set(snap.ctas.filter(
                pl.col("cta_id").is_in(ids))["cta_id"].to_list()))
            if not missing or snap.complete:
                return snap.ctas
            return pl.concat([snap.ctas, view.archived(as_of, cta_ids=missing)])

        actions, result = build(snap, as_of, dt.datetime.now(dt.UTC), known)
        if actions.height and not dry_run:
            after = snapshot.with_actions(snap, actions, as_of)
            txn = Transaction(store)
            txn.put_tables(as_of, {
                "cta_actions": pl.concat([view.actions(as_of, as_of), actions]),
                "cta_snapshot": after.ctas,
                "task_snapshot": after.tasks,
            })
            txn.commit()
    return result
