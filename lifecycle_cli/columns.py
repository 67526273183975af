"""Column names and the tables' columns: one place for every name the tool itself gives.

The rules speak of customers and usage under these names (``columns:`` in the
rules file maps an export's own headers to them); the outputs and the state's
tables have the columns below, in this order.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

# -- the exports, under the rules' names -------------------------------------------------------
ROW = "__row"  # 0-based input row index kept alongside the customers
ID = "customer_id"
STAGE = "stage"
ENTERED = "stage_entered_at"
TIMESTAMP = "timestamp"
OPTIONAL_CUSTOMER_COLUMNS = (STAGE, ENTERED)
REQUIRED_CUSTOMER_COLUMNS = (ID,)
REQUIRED_USAGE_COLUMNS = (ID, TIMESTAMP)

# -- computed per customer: the customers output appends them after the export's columns -----
PREVIOUS_STAGE = "previous_stage"
DAYS_IN_STAGE = "days_in_stage"
EXPECTED_DAYS = "expected_days"
OVERDUE = "overdue"
COMPUTED_COLUMNS = (PREVIOUS_STAGE, DAYS_IN_STAGE, EXPECTED_DAYS, OVERDUE)
SEGMENT = "segment"  # with `segments:` in the rules: each customer's segment, after OVERDUE
# names an expression may read that no export gives
BUILTINS = ("as_of", STAGE, ENTERED, DAYS_IN_STAGE)

INITIAL_RULE = "initial"  # the rule id of an initial assignment
BY_HAND_RULE = "(by hand)"  # the rule of a stage changed by hand in the export (a report's moves)


# `history_columns: true`: per stage, the days spent in it over every visit and the last entry
def stage_slug(stage: str) -> str:
    """A stage name as part of a column name: lower case, runs of other characters as ``_``
    (``Will Churn`` -> ``will_churn``)."""
    return re.sub(r"[\W_]+", "_", stage.lower()).strip("_")


def days_total_column(stage: str) -> str:
    return f"days_in_{stage_slug(stage)}_total"


def last_entered_column(stage: str) -> str:
    return f"last_entered_{stage_slug(stage)}"


def history_columns(stages: list[str]) -> list[str]:
    """The customers output's history columns, stage by stage."""
    return [c for s in stages for c in (days_total_column(s), last_entered_column(s))]

# -- outputs -----------------------------------------------------------------------------------
TRANSITION_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),
    "customer_id": pl.String(),  # the customers' id dtype in a run's output
    "from_stage": pl.String(),
    "to_stage": pl.String(),
    "rule_id": pl.String(),
    "hop": pl.Int64(),
    "days_in_from_stage": pl.Int64(),
    "reason": pl.String(),
}

OPEN = "open"
CLOSED = "closed"
# the spec's columns, then ours: the status, and the visit the CTA belongs to
CTA_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),
    "cta_id": pl.String(),
    "rule_id": pl.String(),
    "customer_id": pl.String(),  # the customers' id dtype in a run's output
    "name": pl.String(),
    "type": pl.String(),
    "priority": pl.String(),
    "stage": pl.String(),
    "owner": pl.String(),
    "created_on": pl.Date(),
    "due_on": pl.Date(),
    "reason": pl.String(),
    "status": pl.String(),
    "closed_on": pl.Date(),
    "close_reason": pl.String(),
    "stage_entered_at": pl.Date(),
    "customer_name": pl.String(),  # the customer's `name` column when the CTA was created
}
NAME = "name"  # the customers column (rules name) that gives a customer's display name
TASK_SCHEMA: dict[str, Any] = {
    "cta_id": pl.String(),
    "customer_id": pl.String(),
    "seq": pl.Int64(),
    "task": pl.String(),
    "owner": pl.String(),
    "due_on": pl.Date(),
}

# -- the state's tables ------------------------------------------------------------------------
SEEN = "last_seen"  # the last as-of date whose export listed the customer
EXPORT_STAGE = "export_stage"  # the stage that export gave (empty: none)
EXPORT_ENTERED = "export_entered_at"  # the stage_entered_at that export gave (empty: none)
STAGE_TABLE_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String(),
    "stage": pl.String(),
    "stage_entered_at": pl.Date(),
    SEEN: pl.Date(),
    EXPORT_STAGE: pl.String(),
    EXPORT_ENTERED: pl.Date(),
}
# `history_columns: true`: per customer and stage, the visits that ended (kept as of each date)
TOTALS_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String(),
    "stage": pl.String(),
    "visits": pl.Int64(),  # visits to the stage that ended
    "days": pl.Int64(),  # the days they lasted (those with a known start)
    "last_entered": pl.Date(),  # the day the latest of them began
}
OVERRIDE_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),
    "customer_id": pl.String(),
    "state_stage": pl.String(),
    "state_entered_at": pl.Date(),
    "export_stage": pl.String(),
    "export_entered_at": pl.Date(),
    "kept": pl.String(),  # "export" or "state": which one the run started from
}

# each CTA's latest row on a date (the state's `cta_snapshot`): the CTA's columns, then what
# people did to it by hand (see lifecycle_cli.ctas.actions)
CTA_SNAPSHOT_SCHEMA: dict[str, Any] = {
    **CTA_SCHEMA,
    "snoozed_until": pl.Date(),  # hidden from the worklist before this date
    "updated_by": pl.String(),  # who last changed it by hand
    "updated_at": pl.Datetime("us", "UTC"),  # and when
}
# the tasks of the open CTAs on a date (the state's `task_snapshot`)
TASK_SNAPSHOT_SCHEMA: dict[str, Any] = {
    **TASK_SCHEMA,
    "done_on": pl.Date(),  # the as-of date it was marked done (empty: not done)
    "done_by": pl.String(),
}
# what people did to CTAs, recorded on the state's date they acted on (`cta_actions`)
CTA_ACTION_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),  # the state's date whose worklist they acted on
    "at": pl.Datetime("us", "UTC"),  # when
    "by": pl.String(),  # who
    "action": pl.String(),  # close, snooze, assign or done
    "cta_id": pl.String(),
    "seq": pl.Int64(),  # done: the task
    "until": pl.Date(),  # snooze: the date the CTA comes back
    "owner": pl.String(),  # assign: the new owner
    "reason": pl.String(),  # close: why
    "source": pl.String(),  # the command, or the imported file and its line
}

# -- what commands other than run write --------------------------------------------------------
# `lifecycle ctas`: a row per open CTA (seq 0) or task
WORKLIST_SCHEMA: dict[str, Any] = {
    "owner": pl.String(),
    "due_on": pl.Date(),
    "days_overdue": pl.Int64(),  # days past due_on on the as-of date; 0 when not yet due
    "item": pl.String(),  # "cta", or "task" (one of a CTA's playbook tasks)
    "customer_id": pl.String(),
    "customer_name": pl.String(),  # the customer's `name` column, when the rules have one
    "cta_id": pl.String(),
    "seq": pl.Int64(),  # 0 for the CTA itself, then the task's place in its playbook
    "what": pl.String(),  # the CTA's name or the task
    "type": pl.String(),
    "priority": pl.String(),
    "stage": pl.String(),
    "created_on": pl.Date(),
    "reason": pl.String(),
}

# `lifecycle notify`: a digest delivered to an owner, recorded on the state's date it speaks
# for (the state's `notifications`); a digest that failed is not recorded, so it is retried
NOTIFICATION_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),
    "owner": pl.String(),  # as the CTAs name the owner
    "channel": pl.String(),  # smtp, webhook or eml
    "address": pl.String(),  # the email address(es), the webhook's host, or the .eml file
    "sent_at": pl.Datetime("us", "UTC"),
    "ctas": pl.Int64(),  # the CTAs in the digest
    "past_due": pl.Int64(),
    "due_today": pl.Int64(),
    "new": pl.Int64(),
    "tasks": pl.Int64(),  # their open tasks
}

# `lifecycle check`: a row per finding and customer
FINDING_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date,
    "finding": pl.String,
    "severity": pl.String,
    "customer_id": pl.String,
    "stage": pl.String,
    "owner": pl.String,
    "days_in_stage": pl.Int64,
    "expected_days": pl.Int64,
    "detail": pl.String,
}

# `lifecycle backtest` (docs/backtest.md). The outcomes file under the rules' names (with
# customer_id): what happened to a customer, and the day it happened
OUTCOME = "outcome"
OUTCOME_DATE = "date"
# a row per flag: a customer entering a predicting stage on a replayed day, and its verdict
FLAG_SCHEMA: dict[str, Any] = {
    "rules": pl.String(),  # the rules file, as given
    "prediction": pl.String(),  # its id, else its stages
    "customer_id": pl.String(),
    "flagged_on": pl.Date(),
    "stage": pl.String(),  # the stage entered
    "verdict": pl.String(),  # hit, false_alarm, unresolved
    "outcome_on": pl.Date(),  # hits: the first outcome within the horizon
    "lead_days": pl.Int64(),  # hits: outcome_on - flagged_on
}
# a row per outcome in the scored period that no flag caught within the horizon
MISSED_SCHEMA: dict[str, Any] = {
    "rules": pl.String(),
    "prediction": pl.String(),
    "customer_id": pl.String(),
    "outcome": pl.String(),
    "outcome_on": pl.Date(),
    "last_flagged_on": pl.Date(),  # the latest flag before the outcome (too early); empty: none
    "never_flagged": pl.Boolean(),
}

# a report's and the state's visits: one customer's stay in one stage
VISIT_SCHEMA: dict[str, Any] = {
    "customer_id": pl.String(),
    "stage": pl.String(),
    "entered": pl.Date(),  # empty: unknown (the stage came without a date)
    "exited": pl.Date(),  # empty: the visit goes on
    "days": pl.Int64(),  # to the exit, or to the end of the period (or the last export)
    "rule_in": pl.String(),  # the rule that moved the customer in: empty when before the history
    "rule_out": pl.String(),  # the rule that moved it out: empty while the visit goes on
}

# a report's moves: transitions, and stages changed by hand (rule "(by hand)", hop -1)
MOVES_SCHEMA: dict[str, Any] = {
    "as_of": pl.Date(),
    "customer_id": pl.String(),
    "from_stage": pl.String(),
    "to_stage": pl.String(),
    "rule_id": pl.String(),
    "hop": pl.Int64(),
    "days_in_from_stage": pl.Int64(),
}
