"""Compliance (``lifecycle check``): who is overdue, stuck, mis-staged or missing data.

Findings are data, not errors: one row per finding and customer, in the
columns of :data:`FINDING_SCHEMA`. The kinds (:data:`FINDING_KINDS`), and the
stages each one looks at:

- on the stages the day starts from (the export's, filled by the state's with
  a state folder), before any rule runs: ``unknown_stage`` (a stage the rules
  don't name; ``run`` stops on it, ``check`` reports it and leaves those
  customers out of the rest) and ``entered_in_future`` (a
  ``stage_entered_at`` after the as-of date);
- on the stages after the as-of date's moves, decided in memory exactly as
  ``run`` (``run --state``) would decide them: ``stuck``, ``overdue``,
  ``no_owner``, ``no_renewal_date``, ``no_usage``. Nothing is written to the
  state;
- on the moves and hand changes of the as-of date (from the same in-memory
  run) and, with a state folder and ``since``, of the state's earlier days:
  ``skipped_stage`` and ``override``;
- on the state's CTAs, when it keeps them: ``cta_past_due``.

Thresholds come from the rules' ``compliance:`` section (see docs/check.md).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from ..columns import DAYS_IN_STAGE, ENTERED, EXPECTED_DAYS, ID, OPEN, ROW, STAGE
from ..ctas.decide import latest_ctas
from ..day.load import load
from ..day.pipeline import run_day
from ..engine.builtins import days_in_stage, expected_days, stuck_after
from ..errors import EXIT_CHECK_FAILED, EXIT_OK, OptionError, Problem, RulesError
from ..expressions import Kind, reason_expr
from ..files import file_facts
from ..inputs.formats import line_of_row
from ..rules.checks import compliance_column_problems
from ..rules.model import FINDING_KINDS, Metric, Rules
from ..state.view import StateView
from ..suggest import did_you_mean
from ..version import __version__

Progress = Callable[[str], None]

SEVERITY = {
    "unknown_stage": "error",
    "entered_in_future": "error",
    "stuck": "error",
    "overdue": "warning",
    "cta_past_due": "warning",
    "skipped_stage": "warning",
    "no_owner": "warning",
    "no_renewal_date": "warning",
    "no_usage": "warning",
    "override": "info",
}
SEVERITIES = ("error", "warning", "info")
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
# the columns of a customers frame that the finding functions read (see `customer_frame`)
OWNER = "owner"
RENEWAL_DATE = "renewal_date"
LAST_USAGE = "last_usage"
# the metric `check` adds to the rules to find each customer's last usage in the same pass
LAST_USAGE_METRIC = "__check_last_usage"


def _noop(_: str) -> None:
    pass


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The rules' ``compliance:`` section resolved against the rules and the export."""

    stuck_factor: float = 2.0
    no_usage_days: int | None = 30
    owner_column: str | None = None
    renewal_stage: str | None = None
    renewal_date_column: str | None = None
    exempt_stages: tuple[str, ...] = ()
    strict_order: tuple[str, ...] = ()
    fail_on: tuple[str, ...] = ()


def resolve(rules: Rules, columns: Collection[str]) -> Settings:
    """Fill the keys the rules leave out: the owner is the first CTA's ``owner``, the renewal
    stage is ``Renewal`` and its date ``renewal_date`` when they exist, exempt stages are
    the terminal ones; ``strict_order: true`` is every stage in file order."""
    c = rules.compliance
    owner = rules.owner_column
    renewal_stage = c.renewal_stage if c.given("renewal_stage") else (
        "Renewal" if "Renewal" in rules.stage_names else None)
    renewal_date = c.renewal_date_column if c.given("renewal_date_column") else (
        "renewal_date" if "renewal_date" in columns else None)
    exempt = (c.exempt_stages if c.exempt_stages is not None
              else [s.name for s in rules.stages if s.terminal])
    order = rules.stage_names if c.strict_order is True else (c.strict_order or [])
    return Settings(
        stuck_factor=c.stuck_factor,
        no_usage_days=c.no_usage_days,
        owner_column=owner if owner in columns else None,
        renewal_stage=renewal_stage,
        renewal_date_column=renewal_date if renewal_date in columns else None,
        exempt_stages=tuple(exempt),
        strict_order=tuple(order),
        fail_on=expand_kinds(c.fail_on),
    )


def expand_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """Finding kinds in :data:`FINDING_KINDS` order; ``any`` is every kind, ``none`` none."""
    if "any" in kinds:
        return FINDING_KINDS
    return tuple(k for k in FINDING_KINDS if k in kinds)


def parse_fail_on(text: str) -> tuple[str, ...]:
    """``--fail-on overdue,stuck`` (or ``any``, ``none``); an OptionError for unknown kinds."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    allowed = [*FINDING_KINDS, "any", "none"]
    problems = [
        Problem(f"--fail-on: unknown finding '{k}'",
                hint=did_you_mean(k, allowed) or "findings: " + ", ".join(allowed))
        for k in kinds if k not in allowed
    ]
    if not kinds:
        problems.append(Problem("--fail-on takes finding kinds separated by commas",
                                hint="findings: " + ", ".join(allowed)))
    if problems:
        raise OptionError(problems)
    return expand_kinds(kinds)


# -- the findings, each from its own frame ------------------------------------------------------


def _rows(frame: pl.LazyFrame, kind: str, as_of: dt.date, detail: pl.Expr) -> pl.LazyFrame:
    """Rows of the findings table from a customers frame (see `customer_frame`)."""
    return frame.select(
        pl.lit(as_of, dtype=pl.Date).alias("as_of"),
        pl.lit(kind, dtype=pl.String).alias("finding"),
        pl.lit(SEVERITY[kind], dtype=pl.String).alias("severity"),
        pl.col("customer_id").cast(pl.String),
        pl.col(STAGE).cast(pl.String),
        pl.col(OWNER).cast(pl.String),
        pl.col(DAYS_IN_STAGE).cast(pl.Int64),
        pl.col(EXPECTED_DAYS).cast(pl.Int64),
        detail.alias("detail"),
    )


def _detail(*items: tuple[str, pl.Expr, Kind]) -> pl.Expr:
    return reason_expr(list(items))


def customer_frame(
    frame: pl.DataFrame | pl.LazyFrame,
    rules: Rules,
    settings: Settings,
    as_of: dt.date,
    *,
    last_usage: str | None = None,
    keep: Sequence[str | pl.Expr] = (),
) -> pl.LazyFrame:
    """The columns the finding functions read, from customers with ID, STAGE, ENTERED and
    the settings' columns: ``customer_id`` (text), ``stage``, ``stage_entered_at``,
    ``days_in_stage``, ``expected_days``, ``owner``, and, when configured,
    ``renewal_date`` and ``last_usage`` (from the column ``last_usage``); then ``keep``."""
    owner = (pl.col(settings.owner_column).cast(pl.String) if settings.owner_column
             else pl.lit(None, dtype=pl.String))
    extra = []
    if settings.renewal_date_column:
        extra.append(pl.col(settings.renewal_date_column).alias(RENEWAL_DATE))
    if last_usage:
        extra.append(pl.col(last_usage).cast(pl.Date).alias(LAST_USAGE))
    return frame.lazy().select(
        pl.col(ID).cast(pl.String).alias("customer_id"),
        pl.col(STAGE),
        pl.col(ENTERED),
        days_in_stage(as_of).alias(DAYS_IN_STAGE),
        expected_days(rules).alias(EXPECTED_DAYS),
        owner.alias(OWNER),
        *extra,
        *keep,
    )


def entry_findings(start: pl.LazyFrame, rules: Rules, as_of: dt.date,
                   where: str | None = None) -> list[pl.LazyFrame]:
    """``unknown_stage`` and ``entered_in_future`` on the stages the day starts from.

    ``start`` is a customer frame (see `customer_frame`); its column ``where`` (text), if
    given, says where each customer's stage came from, e.g. ``source=export; line=5``."""
    names = rules.stage_names
    unknown = pl.col(STAGE).is_not_null() & ~pl.col(STAGE).is_in(names)
    values = start.filter(unknown).select(pl.col(STAGE).unique()).collect()[STAGE].to_list()
    # a suggestion per distinct unknown value (a handful), not per customer
    closest = {v: (best[len("did you mean '"):-2] if (best := did_you_mean(v, names)) else None)
               for v in sorted(values)}
    parts = [("closest", pl.col(STAGE).replace_strict(closest, default=None,
                                                      return_dtype=pl.String), Kind.STRING)]
    detail = _detail(*parts)
    if where is not None:
        detail = pl.concat_str([detail, pl.lit("; "), pl.col(where)])
    future = pl.col(STAGE).is_not_null() & (pl.col(ENTERED) > pl.lit(as_of, dtype=pl.Date))
    return [
        _rows(start.filter(unknown), "unknown_stage", as_of, detail),
        _rows(start.filter(future), "entered_in_future", as_of, _detail(
            ("stage_entered_at", pl.col(ENTERED), Kind.DATE),
            ("days_ahead", -pl.col(DAYS_IN_STAGE), Kind.NUMBER),
        )),
    ]


def stage_findings(current: pl.LazyFrame, settings: Settings, as_of: dt.date) -> list[pl.LazyFrame]:
    """``stuck``, ``overdue``, ``no_owner``, ``no_renewal_date``, ``no_usage`` on the stages
    after the day's moves. ``current`` is a customer frame (see `customer_frame`); a
    finding whose column it lacks is not looked for."""
    days, expected = pl.col(DAYS_IN_STAGE), pl.col(EXPECTED_DAYS)
    limit = stuck_after(settings.stuck_factor)
    entered = ("stage_entered_at", pl.col(ENTERED), Kind.DATE)
    out = [
        _rows(current.filter(days > limit), "stuck", as_of, _detail(
            entered, ("stuck_after_days", limit, Kind.NUMBER))),
        _rows(current.filter(days > expected), "overdue", as_of, _detail(
            entered, ("days_over", days - expected, Kind.NUMBER))),
    ]
    columns = current.collect_schema().names()
    active = ~pl.col(STAGE).is_in(list(settings.exempt_stages))
    if settings.owner_column:
        blank = pl.col(OWNER).is_null() | (pl.col(OWNER).str.strip_chars() == "")
        out.append(_rows(current.filter(active & blank), "no_owner", as_of, _detail(
            ("column", pl.lit(settings.owner_column), Kind.STRING))))
    if settings.renewal_stage and RENEWAL_DATE in columns:
        renewal = pl.col(RENEWAL_DATE)
        if current.collect_schema()[RENEWAL_DATE] == pl.String:
            renewal = pl.when(renewal.str.strip_chars() != "").then(renewal)
        missing = (pl.col(STAGE) == settings.renewal_stage) & renewal.is_null()
        out.append(_rows(current.filter(missing), "no_renewal_date", as_of, _detail(
            ("column", pl.lit(settings.renewal_date_column), Kind.STRING))))
    if settings.no_usage_days and LAST_USAGE in columns:
        since = (pl.lit(as_of, dtype=pl.Date) - pl.col(LAST_USAGE)).dt.total_days()
        quiet = pl.col(LAST_USAGE).is_null() | (since >= settings.no_usage_days)
        out.append(_rows(current.filter(active & quiet), "no_usage", as_of, _detail(
            ("last_usage", pl.col(LAST_USAGE), Kind.DATE),
            ("days_since", since, Kind.NUMBER),
            ("no_usage_days", pl.lit(settings.no_usage_days), Kind.NUMBER),
        )))
    return out


def _with_customer(events: pl.LazyFrame, customers: pl.LazyFrame) -> pl.LazyFrame:
    """``events`` (with ``customer_id`` as text) joined to the customers' current values;
    customers that the export no longer lists get NULLs."""
    return events.join(customers, on="customer_id", how="left", maintain_order="left")


def override_findings(overrides: pl.DataFrame | None, customers: pl.LazyFrame,
                      as_of: dt.date) -> list[pl.LazyFrame]:
    """``override``: stages changed by hand in the export (`state.OVERRIDE_SCHEMA` rows)."""
    if overrides is None or overrides.height == 0:
        return []
    events = overrides.lazy().select(
        pl.col("customer_id").cast(pl.String),
        pl.col("as_of").alias("__seen_on"),
        "state_stage", "export_stage", "kept",
    )
    return [_rows(_with_customer(events, customers), "override", as_of, _detail(
        ("state_stage", pl.col("state_stage"), Kind.STRING),
        ("export_stage", pl.col("export_stage"), Kind.STRING),
        ("kept", pl.col("kept"), Kind.STRING),
        ("seen_on", pl.col("__seen_on"), Kind.DATE),
    ))]


def skipped_stage_findings(transitions: pl.DataFrame | None, customers: pl.LazyFrame,
                           order: Sequence[str], as_of: dt.date) -> list[pl.LazyFrame]:
    """``skipped_stage``: moves forward over stages of ``order`` (the strict order). Moves
    to or from a stage outside it, backward moves and initial assignments are not skips."""
    if transitions is None or transitions.height == 0 or len(order) < 2:
        return []
    index = {name: i for i, name in enumerate(order)}
    # what each (from, to) pair skips: a few stages squared, not one entry per customer
    skipped = {f"{a}\x00{b}": ", ".join(order[i + 1:j])
               for a, i in index.items() for b, j in index.items() if j > i + 1}
    pair = pl.concat_str([pl.col("from_stage"), pl.lit("\x00"), pl.col("to_stage")])
    events = transitions.lazy().select(
        pl.col("customer_id").cast(pl.String),
        pl.col("as_of").alias("__moved_on"),
        "from_stage", "to_stage", "rule_id",
        pair.replace_strict(skipped, default=None, return_dtype=pl.String).alias("__skipped"),
    ).filter(pl.col("__skipped").is_not_null())
    return [_rows(_with_customer(events, customers), "skipped_stage", as_of, _detail(
        ("from_stage", pl.col("from_stage"), Kind.STRING),
        ("to_stage", pl.col("to_stage"), Kind.STRING),
        ("skipped", pl.col("__skipped"), Kind.STRING),
        ("rule_id", pl.col("rule_id"), Kind.STRING),
        ("moved_on", pl.col("__moved_on"), Kind.DATE),
    ))]


def cta_past_due_findings(ctas: pl.DataFrame | None, customers: pl.LazyFrame,
                          as_of: dt.date) -> list[pl.LazyFrame]:
    """``cta_past_due``: CTAs open and due before the as-of date. ``ctas`` holds each CTA's
    latest row on the as-of date (``as_of, cta_id, rule_id, customer_id, name, stage, owner,
    due_on, status, ...``). The owner is the CTA's; the stage and days are the customer's
    now (the CTA's stage when the export no longer lists the customer)."""
    if ctas is None or ctas.height == 0:
        return []
    latest = (
        ctas.lazy()
        .filter((pl.col("status") == OPEN) & (pl.col("due_on") < pl.lit(as_of, dtype=pl.Date)))
        .select(
            pl.col("customer_id").cast(pl.String),
            pl.col("stage").alias("__cta_stage"),
            pl.col("owner").cast(pl.String).alias("__cta_owner"),
            "cta_id", "rule_id", "name", "due_on",
        )
    )
    joined = _with_customer(latest, customers.drop(OWNER)).with_columns(
        pl.coalesce(pl.col(STAGE), pl.col("__cta_stage")).alias(STAGE),
        pl.col("__cta_owner").alias(OWNER),
    )
    return [_rows(joined, "cta_past_due", as_of, _detail(
        ("cta_id", pl.col("cta_id"), Kind.STRING),
        ("name", pl.col("name"), Kind.STRING),
        ("rule_id", pl.col("rule_id"), Kind.STRING),
        ("due_on", pl.col("due_on"), Kind.DATE),
        ("days_past_due", (pl.lit(as_of, dtype=pl.Date) - pl.col("due_on")).dt.total_days(),
         Kind.NUMBER),
    ))]


def collect_findings(parts: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """One findings table: most severe kind first, then customer id, then detail."""
    if not parts:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    rank = {kind: i for i, kind in enumerate(FINDING_KINDS)}
    return (
        pl.concat(parts, how="vertical")
        .sort(pl.col("finding").replace_strict(rank, return_dtype=pl.Int32),
              "customer_id", "detail", nulls_last=True, maintain_order=True)
        .collect()
    )


# -- what a check reads from a state ------------------------------------------------------------


@dataclass
class StateRecords:
    """What `check` reads from a state folder for one as-of date."""

    path: Path
    base: dt.date | None  # the day whose records the as-of date starts from
    transitions: pl.DataFrame | None  # the days from `since` to the day before the as-of date
    overrides: pl.DataFrame | None


def read_state(view: StateView, as_of: dt.date, since: dt.date | None) -> StateRecords:
    """The moves and hand edits of the days from ``since`` to the day before ``as_of``."""
    def period(table: str) -> pl.DataFrame | None:
        if since is None or since >= as_of:
            return None
        frame = view.history(table, since, as_of - dt.timedelta(days=1))
        return frame if frame.width else None

    return StateRecords(view.path, view.before(as_of), period("transitions"),
                        period("overrides"))


# -- a check, end to end -------------------------------------------------------------------------


@dataclass
class CheckResult:
    """The findings of a check and what the terminal and JSON summaries say about them."""

    rules: Rules
    as_of: dt.date
    findings: pl.DataFrame  # FINDING_SCHEMA
    settings: Settings
    customers: int
    input_paths: list[Path]
    warnings: list[str] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)  # kind -> why not
    state: StateRecords | None = None
    since: dt.date | None = None
    seconds: float = 0.0

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {"findings": self.findings}

    def counts(self) -> dict[str, int]:
        """Findings per kind, every kind listed (0 included), most severe first."""
        found = dict(self.findings.group_by("finding").len().iter_rows())
        return {kind: int(found.get(kind, 0)) for kind in FINDING_KINDS}

    def by_owner(self) -> pl.DataFrame:
        """``owner, findings, error, warning, info``: most findings first."""
        return (
            self.findings.group_by("owner")
            .agg(pl.len().alias("findings"),
                 *[(pl.col("severity") == s).sum().alias(s) for s in SEVERITIES])
            .sort(["findings", "owner"], descending=[True, False], nulls_last=True)
        )

    def failed(self, fail_on: Sequence[str]) -> list[str]:
        """The kinds of ``fail_on`` that were found."""
        counts = self.counts()
        return [k for k in FINDING_KINDS if k in fail_on and counts[k]]

    def summary(self, fail_on: Sequence[str], *, rules_path: Path | None = None,
                written: Sequence[Path] = ()) -> dict[str, Any]:
        """The ``--summary-json`` document."""
        failed = self.failed(fail_on)
        return {
            "status": "failed" if failed else "ok",
            "exit_code": EXIT_CHECK_FAILED if failed else EXIT_OK,
            "tool": f"lifecycle {__version__}",
            "command": "check",
            "as_of": self.as_of.isoformat(),
            "duration_seconds": round(self.seconds, 3),
            "rules": None if rules_path is None else file_facts(Path(rules_path)),
            "inputs": [{"path": str(p)} for p in self.input_paths],
            "customers": self.customers,
            "findings": self.counts(),
            "by_severity": {s: int((self.findings["severity"] == s).sum()) for s in SEVERITIES},
            "by_owner": [
                {"owner": owner, "findings": n, **dict(zip(SEVERITIES, rest, strict=True))}
                for owner, n, *rest in self.by_owner().iter_rows()
            ],
            "fail_on": list(fail_on),
            "failed_on": failed,
            "not_checked": self.not_checked,
            "warnings": self.warnings,
            "outputs": [str(p) for p in written],
            "state": None if self.state is None else {
                "path": str(self.state.path),
                "started_from": None if self.state.base is None else self.state.base.isoformat(),
                "since": None if self.since is None else self.since.isoformat(),
            },
        }


def with_last_usage(rules: Rules) -> Rules:
    """``rules`` plus a metric for each customer's last usage, so that it comes out of the
    same pass over the usage as the rules' own metrics."""
    metric = Metric(agg="max", column="timestamp")
    return rules.model_copy(update={"metrics": {**rules.metrics, LAST_USAGE_METRIC: metric}})


def check(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: Sequence[str | Path] = (),
    as_of: dt.date | None = None,
    *,
    state_dir: str | Path | None = None,
    since: dt.date | None = None,
    prefer: str = "export",
    encoding: str | None = None,
    progress: Progress = _noop,
) -> CheckResult:
    """Find what the rules' ``compliance:`` section asks about, for ``as_of`` (default: today).

    With ``state_dir``, the day starts from the state's stages as ``run --state`` would, hand
    changes in the export are ``override`` findings, and ``since`` adds the state's moves and
    hand changes from that day on. Nothing is written. Bad data or rules raise the errors
    ``run`` raises, except unknown stages, which are findings.
    """
    started = time.monotonic()
    as_of = as_of or dt.date.today()
    records = None
    start = None
    if state_dir is not None:
        progress("reading the state")
        view = StateView.open(state_dir, empty_ok=True)
        start = view.start(as_of, prefer=prefer)
        records = read_state(view, as_of, since)
    not_checked: dict[str, str] = {}
    usage_wanted = bool(usage_paths) and rules.compliance.no_usage_days is not None
    run_rules = with_last_usage(rules) if usage_wanted else rules
    loaded = load(run_rules, customers_path, usage_paths, encoding=encoding, progress=progress,
                  keep_unknown_stages=True)
    missing = compliance_column_problems(rules, loaded.typed.columns)
    if missing:
        raise RulesError(missing)
    settings = resolve(rules, loaded.typed.columns)
    # the day in memory, exactly as `run --state` decides it; customers whose starting stage
    # the rules don't name are set aside (unknown_stage findings)
    day = run_day(run_rules, loaded, as_of, start, set_aside_unknown=True, progress=progress)
    progress("looking for findings")
    customers = customer_frame(day.final, rules, settings, as_of,
                               last_usage=LAST_USAGE_METRIC if usage_wanted else None)
    path = loaded.customers.path
    csv = line_of_row(path, 0) is not None
    where = (  # the export's line, or the state, for an unknown stage
        pl.when(pl.col("__export_stage").eq_missing(pl.col(STAGE)))
        .then(pl.concat_str([pl.lit("source=export; line=" if csv else "source=export; row="),
                             (pl.col(ROW) + (2 if csv else 1)).cast(pl.String)]))
        .otherwise(pl.lit("source=state"))
    )
    start_stages = day.prepared.started
    started_from = customer_frame(
        start_stages.with_columns(loaded.typed[STAGE].alias("__export_stage")), rules, settings,
        as_of, keep=[where.alias("__where")])
    set_aside = customer_frame(day.prepared.set_aside, rules, settings, as_of)
    columns = customer_frame(start_stages.head(0), rules, settings, as_of).collect_schema().names()
    everyone = pl.concat([customers.select(columns), set_aside.select(columns)])
    transitions = day.transitions.with_columns(pl.col("customer_id").cast(pl.String))
    overrides = day.overrides
    ctas = None
    if start is not None and records is not None:
        # each CTA's latest row after the as-of date's own, created and closed as `run --state`
        # would
        ctas = latest_ctas(start.ctas, day.records()["ctas"])
        overrides = _concat(records.overrides, overrides)
        transitions = _concat(records.transitions, transitions)
    parts = [
        *entry_findings(started_from, rules, as_of, "__where"),
        *stage_findings(customers, settings, as_of),
        *override_findings(overrides, everyone, as_of),
        *skipped_stage_findings(transitions, everyone, settings.strict_order, as_of),
        *cta_past_due_findings(ctas, everyone, as_of),
    ]
    findings = collect_findings(parts)

    if settings.owner_column is None:
        not_checked["no_owner"] = "no owner column (compliance: owner_column, or a CTA's owner)"
    if settings.no_usage_days is None:
        not_checked["no_usage"] = "compliance: no_usage_days is null"
    elif not usage_paths:
        not_checked["no_usage"] = "no usage export given"
    if settings.renewal_stage is None or settings.renewal_date_column is None:
        not_checked["no_renewal_date"] = (
            "no renewal stage (compliance: renewal_stage)" if settings.renewal_stage is None
            else "no renewal date column (compliance: renewal_date_column)")
    if len(settings.strict_order) < 2:
        not_checked["skipped_stage"] = "the stage order is not strict (compliance: strict_order)"
    if records is None:
        not_checked["override"] = "no --state to compare the export with"
    if not rules.ctas:
        not_checked["cta_past_due"] = "the rules have no CTAs"
    elif records is None:
        not_checked["cta_past_due"] = "no --state: a run without one knows no CTA past due"
    return CheckResult(
        rules=rules,
        as_of=as_of,
        findings=findings,
        settings=settings,
        customers=loaded.typed.height,
        input_paths=loaded.paths,
        warnings=list(day.prepared.warnings),  # what the day decided is in the findings
        not_checked=not_checked,
        state=records,
        since=since if records is not None else None,
        seconds=time.monotonic() - started,
    )


def _concat(earlier: pl.DataFrame | None, today: pl.DataFrame) -> pl.DataFrame:
    if earlier is None or earlier.height == 0:
        return today
    return pl.concat([earlier.select(today.columns), today], how="vertical_relaxed")


__all__ = [
    "FINDING_KINDS",
    "FINDING_SCHEMA",
    "CheckResult",
    "Settings",
    "check",
    "collect_findings",
    "cta_past_due_findings",
    "customer_frame",
    "entry_findings",
    "override_findings",
    "parse_fail_on",
    "resolve",
    "skipped_stage_findings",
    "stage_findings",
]
