"""Calls to action: created by CTA rules on a run's final state, closed when their visit ends.

A CTA belongs to a *visit*: one customer's stay in one stage, named by the
stage and the date the stay began (``stage_entered_at``). Each CTA rule
creates at most one CTA per customer and visit, so its id is made of the
rule, the customer and the visit: the same three always give the same id, and
a CRM import can upsert on it.

A day's CTA *events* are the CTAs it created (status ``open``) and the CTAs
it closed (status ``closed``, with ``closed_on`` and ``close_reason``). With
``--state`` the events of every day are kept; the latest row of a ``cta_id``
is that CTA's current status, and every id ever created is "already done"
for its visit, so repeated, skipped and replayed days create nothing twice.

Everything here is a Polars expression over all customers; the only Python
loops are over CTA rules and playbook tasks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from ..columns import CLOSED, CTA_SCHEMA, ENTERED, ID, NAME, OPEN, ROW, STAGE, TASK_SCHEMA
from ..engine.builtins import owner as owner_of
from ..engine.compile import in_segments
from .triggers import ENTERED_NOW, Firing, trigger

if TYPE_CHECKING:
    from ..engine.compile import CompiledCTA, CompiledRules

KEY = "__key"  # the customer id as text: the state's and the cta_id's spelling
RULE_INDEX = "__rule"


@dataclass
class CtaResult:
    """A run's CTA events (created and closed) and the tasks of the CTAs it created.

    The tasks are built when first read: `check` and `explain` never read them (1.3 s at
    1M customers)."""

    ctas: pl.DataFrame  # CTA_SCHEMA, customer_id in the customers' dtype
    # TASK_SCHEMA, customer_id in the customers' dtype; or how to make them
    _tasks: pl.DataFrame | Callable[[], pl.DataFrame]

    @property
    def tasks(self) -> pl.DataFrame:
        if callable(self._tasks):
            self._tasks = self._tasks()
        return self._tasks

    @property
    def created(self) -> pl.DataFrame:
        return self.ctas.filter(pl.col("status") == OPEN)

    @property
    def closed(self) -> pl.DataFrame:
        return self.ctas.filter(pl.col("status") == CLOSED)


def empty(id_dtype: Any = pl.String) -> CtaResult:
    return CtaResult(
        pl.DataFrame(schema={**CTA_SCHEMA, "customer_id": id_dtype}),
        pl.DataFrame(schema={**TASK_SCHEMA, "customer_id": id_dtype}),
    )


def cta_id_expr(rule_id: pl.Expr, key: pl.Expr, stage: pl.Expr, entered: pl.Expr) -> pl.Expr:
    """``rule:customer:stage:YYYY-MM-DD``: readable, and the same for the same visit."""
    return pl.concat_str(
        [rule_id, key, stage, entered.dt.to_string("%Y-%m-%d").fill_null("")], separator=":"
    )


def due_date(start: dt.date, days: int, *, business: bool = False,
             holidays: Sequence[dt.date] = ()) -> dt.date:
    """``days`` after ``start``: calendar days, or with ``business`` the ``days``-th business
    day after it (Monday to Friday, not one of ``holidays``); 0 business days is ``start``
    itself, or the next business day when ``start`` is not one."""
    if not business:
        return start + dt.timedelta(days=days)
    series = pl.Series([start], dtype=pl.Date).dt.add_business_days(
        days, holidays=list(holidays), roll="forward" if days == 0 else "backward")
    result: dt.date = series.item()
    return result


def cta_rows(frame: pl.DataFrame | None) -> pl.DataFrame:
    """``frame``'s CTA columns (CTA_SCHEMA; those a state of an older version lacks, empty)."""
    if frame is None:
        return pl.DataFrame(schema=CTA_SCHEMA)
    return frame.select(
        (pl.col(c) if c in frame.columns else pl.lit(None, dtype=t)).alias(c)
        for c, t in CTA_SCHEMA.items()
    )


def current(history: pl.DataFrame | None) -> pl.DataFrame:
    """Each CTA's latest row in a history of CTA events (the state's ``ctas`` table)."""
    if history is None or history.height == 0:
        return pl.DataFrame(schema=CTA_SCHEMA)
    if not history["as_of"].is_sorted():  # the state's tables come in date order already
        history = history.sort("as_of", maintain_order=True)
    return history.unique(subset="cta_id", keep="last", maintain_order=True)


def latest_ctas(latest: pl.DataFrame | None, today: pl.DataFrame) -> pl.DataFrame:
    """`current` of a history whose `current` is ``latest``, plus a later day's events."""
    if latest is None or latest.height == 0:
        return today
    replaced = pl.col("cta_id").is_in(today["cta_id"].implode())  # today's are few
    return pl.concat([latest.filter(~replaced), today], how="diagonal_relaxed")


def decide_ctas(
    final: pl.DataFrame,
    compiled: CompiledRules,
    *,
    entered_now: pl.Series,
    history: pl.DataFrame | None = None,
) -> CtaResult:
    """SPEC "How a run decides" step 5 on a run's final state, plus auto-close.

    ``final`` holds every customer after the run (ROW, ID, STAGE, ENTERED, the
    built-ins, attributes, metrics and derived values). ``entered_now`` holds
    the ids of the customers that entered their stage in this run.
    ``history`` is each CTA's latest row before this day (`current` of the state's CTA
    events; None: a run without a state).
    """
    id_dtype = final.schema[ID]
    if not compiled.ctas:
        return empty(id_dtype)
    frame = final.lazy().with_columns(pl.col(ID).cast(pl.String).alias(KEY)).with_columns(
        pl.col(KEY).is_in(entered_now.cast(pl.String).implode()).alias(ENTERED_NOW)
    )
    before = cta_rows(history)
    triggered = pl.concat([_triggered(frame, c, compiled) for c in compiled.ctas],
                          how="vertical")
    if before.height:  # what earlier runs created for the same visit
        triggered = triggered.join(before.lazy().select("cta_id"), on="cta_id", how="anti")
    created = triggered.collect()  # sorted below, with the closed ones
    closed = _closed(frame, compiled, before.filter(pl.col("status") == OPEN))
    columns = list(CTA_SCHEMA)
    ctas = pl.concat([created.select(ROW, RULE_INDEX, *columns),
                      closed.select(ROW, RULE_INDEX, *columns)], how="vertical")
    ctas = ctas.sort([ROW, RULE_INDEX, "status"])  # a closed visit before the new one
    # the tasks, if they are read, need only these of the created CTAs: keep no more
    keys = created.select(ROW, RULE_INDEX, "cta_id", "customer_id", "owner")
    del created
    return CtaResult(ctas.drop(ROW, RULE_INDEX), lambda: _tasks(keys, final, compiled))


def _triggered(frame: pl.LazyFrame, cta: CompiledCTA, compiled: CompiledRules) -> pl.LazyFrame:
    """The customers for whom ``cta`` fires now, as CTA rows (status open)."""
    rule = cta.rule
    how = trigger(rule.on)  # what fires it, and the reason it gives
    firing = Firing(rule, cta.when, compiled.reason_for)
    fires, reason = how.fires(firing), how.reason(firing)
    if cta.close_when is not None:  # nothing to do: it would close at once
        fires = fires & ~cta.close_when.as_condition()
    fires = in_segments(fires, cta.segments)
    rules = compiled.rules
    business = rules.business_days if rule.business_days is None else rule.business_days
    due = pl.lit(due_date(compiled.as_of, rule.due_days, business=business,
                          holidays=rules.holidays), dtype=pl.Date)
    name = (pl.col(NAME).cast(pl.String) if NAME in frame.collect_schema()
            else pl.lit(None, dtype=pl.String))
    fired = frame.filter(fires & pl.col(STAGE).is_not_null()).with_columns(
        cta_id_expr(pl.lit(rule.id), pl.col(KEY), pl.col(STAGE), pl.col(ENTERED)).alias("cta_id"))
    return fired.select(
        pl.col(ROW),
        pl.lit(cta.index, dtype=pl.Int64).alias(RULE_INDEX),
        pl.lit(compiled.as_of, dtype=pl.Date).alias("as_of"),
        pl.col("cta_id"),
        pl.lit(rule.id, dtype=pl.String).alias("rule_id"),
        pl.col(ID).alias("customer_id"),
        pl.lit(rule.name, dtype=pl.String).alias("name"),
        pl.lit(rule.type, dtype=pl.String).alias("type"),
        pl.lit(str(rule.priority), dtype=pl.String).alias("priority"),
        pl.col(STAGE).alias("stage"),
        owner_of(rule.owner, compiled.rules.default_owner).alias("owner"),
        pl.lit(compiled.as_of, dtype=pl.Date).alias("created_on"),
        due.alias("due_on"),
        reason.alias("reason"),
        pl.lit(OPEN, dtype=pl.String).alias("status"),
        pl.lit(None, dtype=pl.Date).alias("closed_on"),
        pl.lit(None, dtype=pl.String).alias("close_reason"),
        pl.col(ENTERED).alias("stage_entered_at"),
        name.alias("customer_name"),
    )


def _closed(frame: pl.LazyFrame, compiled: CompiledRules, open_before: pl.DataFrame
            ) -> pl.DataFrame:
    """The open CTAs that close now: their visit ended, or their `close_when` holds.

    Customers missing from this export keep their stage in the state, and so
    keep their open CTAs.
    """
    given = frame.collect_schema()
    schema = {ROW: given[ROW], RULE_INDEX: pl.Int64, **CTA_SCHEMA, "customer_id": given[ID]}
    if open_before.height == 0:
        return pl.DataFrame(schema=schema)
    index = {c.rule.id: c.index for c in compiled.ctas}
    close_when = [c for c in compiled.ctas if c.close_when is not None]
    # the CTA's columns under other names: conditions read the customer's (status, name...)
    cta = {c: f"__cta_{c}" for c in CTA_SCHEMA}
    mine = open_before.lazy().with_columns(
        pl.col("customer_id").cast(pl.String).alias(KEY),
        pl.col("rule_id").replace_strict(index, default=None, return_dtype=pl.Int64)
        .alias(RULE_INDEX),
    ).rename(cta)
    # only the customers with open CTAs, with every column a close_when may read
    now = frame.join(mine.select(KEY).unique(), on=KEY, how="semi")
    joined = mine.join(now, on=KEY, how="inner")
    old_stage, old_entered = pl.col(cta["stage"]), pl.col(cta["stage_entered_at"])
    left = ~(pl.col(STAGE).eq_missing(old_stage) & pl.col(ENTERED).eq_missing(old_entered))
    # a CTA closes by the `close_when` of its rule in the customer's segment (a segment may
    # replace a rule: the same id)
    mine_now = {c.index: in_segments(pl.col(cta["rule_id"]) == c.rule.id, c.segments)
                for c in close_when}
    closes: Any = left
    for c in close_when:
        assert c.close_when is not None
        closes = closes | (mine_now[c.index] & c.close_when.as_condition())
    exit_reason = pl.concat_str(
        pl.lit("stage exit: "), old_stage, pl.lit(" → "), pl.col(STAGE),
        pl.when(pl.col(STAGE) == old_stage)
        .then(pl.lit(" (entered again on ")
              + pl.col(ENTERED).dt.to_string("%Y-%m-%d").fill_null("an unknown date")
              + pl.lit(")"))
        .otherwise(pl.lit("")),
    )
    reason: Any = pl.when(left).then(exit_reason)
    for c in close_when:
        assert c.close_when is not None
        reason = reason.when(mine_now[c.index]).then(
            pl.lit("close_when: ") + compiled.reason_for(c.close_when))
    # reasons only for the CTAs that close
    closing = joined.filter(closes).with_columns(reason.alias("__why"))
    kept = [c for c in CTA_SCHEMA
            if c not in ("as_of", "customer_id", "status", "closed_on", "close_reason")]
    return (
        closing.select(
            pl.col(ROW),
            pl.col(RULE_INDEX).fill_null(-1),
            pl.lit(compiled.as_of, dtype=pl.Date).alias("as_of"),
            pl.col(ID).alias("customer_id"),
            *[pl.col(cta[c]).alias(c) for c in kept],
            pl.lit(CLOSED, dtype=pl.String).alias("status"),
            pl.lit(compiled.as_of, dtype=pl.Date).alias("closed_on"),
            pl.col("__why").alias("close_reason"),
        )
        .select(list(schema))
        .collect()
    )


def _tasks(created: pl.DataFrame, final: pl.DataFrame, compiled: CompiledRules
           ) -> pl.DataFrame:
    """The playbook tasks of the CTAs created now: due ``due_days`` after creation."""
    rules, as_of = compiled.rules, compiled.as_of
    id_dtype = final.schema[ID]
    frames: list[pl.DataFrame] = []
    for c in compiled.ctas:
        tasks = rules.playbooks.get(c.rule.playbook or "", [])
        if not tasks:
            continue
        mine = created.filter(pl.col(RULE_INDEX) == c.index).select(ROW, "cta_id", "customer_id",
                                                                     "owner")
        if mine.height == 0:
            continue
        owner_columns = sorted({t.owner for t in tasks if t.owner is not None})
        if owner_columns:
            mine = mine.join(final.select(ROW, *owner_columns), on=ROW, how="left",
                             maintain_order="left")
        for seq, task in enumerate(tasks, start=1):
            owner = (owner_of(task.owner, None).fill_null(pl.col("owner"))
                     if task.owner is not None else pl.col("owner"))
            business = next(b for b in (task.business_days, c.rule.business_days,
                                        rules.business_days) if b is not None)
            due = due_date(as_of, task.due_days, business=business, holidays=rules.holidays)
            frames.append(mine.select(
                pl.col(ROW),
                pl.lit(c.index, dtype=pl.Int64).alias(RULE_INDEX),
                pl.col("cta_id"),
                pl.col("customer_id"),
                pl.lit(seq, dtype=pl.Int64).alias("seq"),
                pl.lit(task.task, dtype=pl.String).alias("task"),
                owner.alias("owner"),
                pl.lit(due, dtype=pl.Date).alias("due_on"),
            ))
    if not frames:
        return pl.DataFrame(schema={**TASK_SCHEMA, "customer_id": id_dtype})
    return pl.concat(frames).sort([ROW, RULE_INDEX, "seq"]).select(list(TASK_SCHEMA))
