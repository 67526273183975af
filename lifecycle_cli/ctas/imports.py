"""A CRM's CTA statuses as hand actions: what `lifecycle ctas import FILE` records.

The file is a table (CSV, XLSX, Parquet...) with a row per CTA, or per task,
as the CRM exported them:

- ``cta_id`` (required): the CTA's id as lifecycle wrote it;
- ``status`` (required): ``open`` (or new, in progress, ...) changes nothing
  but the owner; ``closed`` (or done, completed, resolved, cancelled, ...)
  closes the CTA; ``snoozed`` (or deferred, on hold, postponed) snoozes it
  until ``snoozed_until``. On a task row, ``done`` (or closed, completed, ...)
  marks the task done;
- ``seq`` (optional): the row is about task ``seq`` of the CTA;
- ``owner`` (optional): the CTA's owner in the CRM; a different one reassigns
  it (case and surrounding blanks ignored);
- ``snoozed_until`` (optional): a date, ``YYYY-MM-DD``;
- ``close_reason`` (optional; or ``reason``): why it closed; default
  ``CRM status <status>``.

Headers are matched ignoring case, blanks, ``-`` and ``_`` (``CTA ID`` is
``cta_id``); ``mapping`` names others (``{"cta_id": "Lifecycle Id"}``). Empty
cells change nothing. Only changes become actions: a CRM export of every
CTA, imported every night, records only what people changed since. Rows
naming CTAs the state does not hold, or asking to reopen a CTA the state
closed, are left out and reported; anything malformed (an unknown status,
a bad date, a CTA listed twice) is an error, and nothing is recorded.

Every row is handled at once with Polars; the only Python loops are over the
columns and over the problems found.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..columns import CTA_ACTION_SCHEMA, OPEN
from ..errors import DataError, Problem
from ..inputs.formats import line_of_row, rows_text, where
from ..suggest import did_you_mean
from .actions import ASSIGN, CLOSE, DONE, SNOOZE
from .snapshot import CtaSnapshot

REQUIRED = ("cta_id", "status")
OPTIONAL = ("seq", "owner", "snoozed_until", "close_reason")
ALIASES = {"reason": "close_reason"}
OPEN_WORDS = ("open", "new", "in progress", "not started", "pending", "working", "active")
CLOSED_WORDS = ("closed", "close", "done", "completed", "complete", "resolved", "cancelled",
                "canceled", "dismissed", "won", "lost")
SNOOZED_WORDS = ("snoozed", "snooze", "deferred", "on hold", "postponed")
STATUS_WORDS = {**dict.fromkeys(OPEN_WORDS, "open"), **dict.fromkeys(CLOSED_WORDS, "closed"),
                **dict.fromkeys(SNOOZED_WORDS, "snoozed")}

ROW = "__row"


def _key(header: str) -> str:
    return re.sub(r"[\s_\-]+", "_", header.strip().lower()).strip("_")


@dataclass(frozen=True)
class Imported:
    """What an import does: its actions (in the file's order) and what it leaves out."""

    actions: pl.DataFrame  # CTA_ACTION_SCHEMA
    rows: int
    unknown: pl.DataFrame  # line, cta_id, seq: CTAs (or tasks) the state does not hold
    not_open: pl.DataFrame  # line, cta_id, closed_on: the CRM has it open, the state closed
    unchanged: int  # rows that change nothing


def columns_of(frame: pl.DataFrame, path: Path, mapping: dict[str, str] | None = None
               ) -> dict[str, str]:
    """Our column name -> the file's header, for the columns the file has."""
    problems: list[Problem] = []
    known = (*REQUIRED, *OPTIONAL)
    found: dict[str, str] = {}
    for header in frame.columns:
        name = ALIASES.get(_key(header), _key(header))
        if name in known and name not in found:
            found[name] = header
    for name, header in (mapping or {}).items():
        if name not in known:
            problems.append(Problem(f"--column {name}=...: lifecycle reads no column '{name}'",
                                    hint=did_you_mean(name, list(known))
                                    or "it reads " + ", ".join(known)))
        elif header not in frame.columns:
            problems.append(Problem(f"--column {name}={header}: the file has no column "
                                    f"'{header}'", file=str(path),
                                    hint=did_you_mean(header, frame.columns)
                                    or "its columns: " + ", ".join(frame.columns)))
        else:
            found[name] = header
    for name in REQUIRED:
        if name not in found:
            problems.append(Problem(
                f"the file has no column '{name}'", file=str(path),
                hint=(did_you_mean(name, frame.columns) or "its columns: "
                      + ", ".join(frame.columns))
                + f"; or name the column with --column {name}=HEADER"))
    if problems:
        raise DataError(problems)
    return found


def read_rows(frame: pl.DataFrame, path: Path, found: dict[str, str]) -> pl.DataFrame:
    """The file's rows in our columns, checked: every problem at once, or the rows."""

    def text(name: str) -> pl.Expr:
        if name not in found:
            return pl.lit(None, dtype=pl.String)
        value = pl.col(found[name]).cast(pl.String).str.strip_chars()
        return pl.when(value == "").then(None).otherwise(value)

    raw = frame.with_row_index(ROW).select(
        pl.col(ROW), *(text(n).alias(n) for n in (*REQUIRED, *OPTIONAL)))
    word = raw["status"].str.to_lowercase().str.replace_all(r"[\s_\-]+", " ")
    rows = raw.with_columns(
        word.replace_strict(STATUS_WORDS, default=None).alias("__status"),
        pl.col("seq").str.replace(r"\.0+$", "").cast(pl.Int64, strict=False).alias("__seq"),
        pl.col("snoozed_until").str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        .alias("__until"),
    )
    problems: list[Problem] = []

    def bad(mask: pl.Expr, message: str, column: str, hint: str | None = None) -> None:
        hits = rows.filter(mask)
        if hits.height:
            lines = rows_text(path, hits[ROW].to_list(), hits.height)
            problems.append(Problem(f"{message} ({hits.height:,} row(s): {lines})",
                                    file=str(path), column=found.get(column, column), hint=hint))

    bad(pl.col("cta_id").is_null(), "an empty cta_id", "cta_id")
    bad(pl.col("status").is_null(), "an empty status", "status",
        "write open, closed or snoozed (or leave the row out)")
    for value, row in (rows.filter(pl.col("status").is_not_null() & pl.col("__status").is_null())
                       .group_by("status", maintain_order=True).agg(pl.col(ROW).first())
                       .iter_rows()):
        problems.append(Problem(
            f"unknown status '{value}' ({where(path, row)})", file=str(path),
            column=found["status"],
            hint=(did_you_mean(value, list(STATUS_WORDS)) or "") +
            f" statuses: {', '.join(OPEN_WORDS)} (open); {', '.join(CLOSED_WORDS)} (closed); "
            f"{', '.join(SNOOZED_WORDS)} (snoozed)"))
    bad(pl.col("seq").is_not_null() & (pl.col("__seq").is_null() | (pl.col("__seq") < 1)),
        "seq is not a task number (1, 2, ...)", "seq")
    bad(pl.col("snoozed_until").is_not_null() & pl.col("__until").is_null(),
        "snoozed_until is not a date; write YYYY-MM-DD", "snoozed_until")
    bad((pl.col("__status") == "snoozed") & pl.col("seq").is_null()
        & pl.col("snoozed_until").is_null(),
        "status snoozed without a snoozed_until date", "snoozed_until")
    bad((pl.col("__status") == "snoozed") & pl.col("seq").is_not_null(),
        "a task cannot be snoozed (snooze its CTA)", "status")
    twice = pl.struct("cta_id", "__seq").is_duplicated() & pl.col("cta_id").is_not_null()
    bad(twice, "the same CTA (or task) is listed more than once", "cta_id",
        "keep one row per CTA, and one per task")
    if problems:
        raise DataError(problems)
    return rows


def import_actions(frame: pl.DataFrame, path: Path, snap: CtaSnapshot, as_of: dt.date,
                   at: dt.datetime, by: str, *, mapping: dict[str, str] | None = None
                   ) -> Imported:
    """The actions that bring the state's CTAs on ``as_of`` (``snap``) to the statuses in
    ``frame`` (the file at ``path``, read as it is)."""
    found = columns_of(frame, path, mapping)
    rows = read_rows(frame, path, found)
    state = snap.ctas.select(
        "cta_id", pl.col("status").alias("__state"), pl.col("owner").alias("__owner"),
        pl.col("snoozed_until").alias("__snoozed"), pl.col("closed_on").alias("__closed_on"))
    tasks = snap.tasks.select("cta_id", pl.col("seq").alias("__seq"),
                              pl.col("done_on").alias("__done_on"), pl.lit(True).alias("__task"))
    joined = (rows.join(state, on="cta_id", how="left", maintain_order="left")
              .join(tasks, on=["cta_id", "__seq"], how="left", maintain_order="left"))
    first = line_of_row(path, 0)  # where a row is, as `where` writes it
    line = (pl.lit("line ") + (pl.col(ROW) + first).cast(pl.String) if first is not None
            else pl.lit("row ") + (pl.col(ROW) + 1).cast(pl.String))
    is_task = pl.col("__seq").is_not_null()
    is_open = pl.col("__state") == OPEN
    unknown = joined.filter(pl.col("__state").is_null() | (is_task & is_open
                                                           & pl.col("__task").is_null()))
    not_open = joined.filter(pl.col("__state").is_not_null() & ~is_open & ~is_task
                             & (pl.col("__status") != "closed"))
    cta_rows = joined.filter(is_open & ~is_task)
    owner = pl.col("owner")
    new_owner = owner.is_not_null() & ~owner.str.to_lowercase().eq_missing(
        pl.col("__owner").str.strip_chars().str.to_lowercase())
    until = pl.col("__until")
    snooze = (until.is_not_null() & (until > pl.lit(as_of)) & until.ne_missing(pl.col("__snoozed"))
              & (pl.col("__status") != "closed"))
    reason = pl.coalesce(pl.col("close_reason"), pl.lit("CRM status ") + pl.col("status"))
    parts = [
        cta_rows.filter(new_owner).select(ROW, pl.lit(0).alias("__k"),
                                          pl.lit(ASSIGN).alias("action"), "cta_id",
                                          owner.alias("owner")),
        cta_rows.filter(snooze).select(ROW, pl.lit(1).alias("__k"),
                                       pl.lit(SNOOZE).alias("action"), "cta_id",
                                       until.alias("until")),
        cta_rows.filter(pl.col("__status") == "closed").select(
            ROW, pl.lit(2).alias("__k"), pl.lit(CLOSE).alias("action"), "cta_id",
            reason.alias("reason")),
        joined.filter(is_task & is_open & pl.col("__task").fill_null(False)
                      & pl.col("__done_on").is_null() & (pl.col("__status") == "closed"))
        .select(ROW, pl.lit(3).alias("__k"), pl.lit(DONE).alias("action"), "cta_id",
                pl.col("__seq").alias("seq")),
    ]
    acts = pl.concat(parts, how="diagonal_relaxed").sort(ROW, "__k")
    source = pl.lit(f"import {path.name} ") + line
    actions = acts.with_columns(
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        pl.lit(at, dtype=CTA_ACTION_SCHEMA["at"]).alias("at"),
        pl.lit(by, dtype=pl.String).alias("by"),
        source.alias("source"),
    )
    actions = actions.select(
        (pl.col(c) if c in actions.columns else pl.lit(None)).cast(t).alias(c)
        for c, t in CTA_ACTION_SCHEMA.items())
    acting = acts[ROW].n_unique() if acts.height else 0
    return Imported(
        actions=actions,
        rows=rows.height,
        unknown=unknown.select(line.alias("line"), "cta_id", pl.col("__seq").alias("seq")),
        not_open=not_open.select(line.alias("line"), "cta_id",
                                 pl.col("__closed_on").alias("closed_on")),
        unchanged=rows.height - acting - unknown.height - not_open.height,
    )
