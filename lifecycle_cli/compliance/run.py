"""Compliance (``lifecycle check``): who is overdue, stuck, mis-staged or missing data.

Findings are data, not errors: one row per finding and customer, in the
columns of :data:`FINDING_SCHEMA`. Each kind of finding is a module of
`lifecycle_cli.compliance.findings`, which says what it looks at: the stages the day
starts from, the stages after the as-of date's moves (decided in memory exactly
as ``run``, or ``run --state``, would decide them; nothing is written to the
state), the moves and hand changes of the as-of date (and with a state folder
and ``since``, of the state's earlier days), or the state's CTAs.

:func:`check` runs the day, builds the one :class:`~.findings.Context` the
findings look at, and collects their rows. Thresholds come from the rules'
``compliance:`` section (see docs/check.md), resolved by :func:`resolve`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from ..columns import ID, ROW, SEGMENT, STAGE
from ..day.load import Progress, Tables, UsageSpecs, load, named_paths, no_progress
from ..day.pipeline import run_day
from ..errors import EXIT_CHECK_FAILED, EXIT_OK, OptionError, Problem, RulesError
from ..files import file_facts
from ..inputs.formats import line_of_row
from ..metrics.compute import MetricsResult, stored_metrics
from ..report.groups import GROUP, attach, check_free, find_column, group_map, group_names
from ..rules.checks import compliance_column_problems
from ..rules.model import USAGE, Metric, Rules
from ..state.view import StateView
from ..suggest import did_you_mean
from ..version import __version__
from . import findings as registry  # the findings, one module each
from .findings import FINDING_SCHEMA, SEVERITIES, Context, customer_frame
from .findings.context import WHERE

if TYPE_CHECKING:
    from ..day.load import Loaded
    from ..day.pipeline import Day
    from ..day.start import Start


# the metric `check` adds to the rules to find each customer's last usage in the same pass
LAST_USAGE_METRIC = "__check_last_usage"



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
        fail_on=registry.expand(c.fail_on),
    )


def parse_fail_on(text: str) -> tuple[str, ...]:
    """``--fail-on overdue,stuck`` (or ``any``, ``none``); an OptionError for unknown kinds."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    allowed = [*registry.names(), *registry.RESERVED]
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
    return registry.expand(kinds)


# -- the findings table ---------------------------------------------------------------------


def collect_findings(parts: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """One findings table: most severe kind first, then customer id, then detail."""
    if not parts:
        return pl.DataFrame(schema=FINDING_SCHEMA)
    rank = {kind: i for i, kind in enumerate(registry.names())}
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
    by: str | None = None  # --by: the customer column in the findings' first column
    groups: list[str] = field(default_factory=list)  # its values, in order

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {"findings": self.findings}

    def counts(self) -> dict[str, int]:
        """Findings per kind, every kind listed (0 included), most severe first."""
        found = dict(self.findings.group_by("finding").len().iter_rows())
        return {kind: int(found.get(kind, 0)) for kind in registry.names()}

    def by_owner(self) -> pl.DataFrame:
        """``owner, findings, error, warning, info``: most findings first."""
        return (
            self.findings.group_by("owner")
            .agg(pl.len().alias("findings"),
                 *[(pl.col("severity") == s).sum().alias(s) for s in SEVERITIES])
            .sort(["findings", "owner"], descending=[True, False], nulls_last=True)
        )

    def by_group(self) -> pl.DataFrame:
        """With ``by``: ``finding``, then the number of each group's findings of that kind
        (a column per group, in order), then ``total``; every kind, most severe first."""
        if self.by is None:
            return pl.DataFrame()
        counts = self.findings.group_by("finding", self.by).len()
        columns = {g: counts.filter(pl.col(self.by) == g).select("finding", pl.col("len")
                                                                  .alias(g))
                   for g in self.groups}
        table = pl.DataFrame({"finding": registry.names()})
        for part in columns.values():
            table = table.join(part, on="finding", how="left", maintain_order="left")
        return table.with_columns(pl.col(self.groups).fill_null(0).cast(pl.Int64)) \
            .with_columns(pl.sum_horizontal(self.groups).alias("total"))

    def failed(self, fail_on: Sequence[str]) -> list[str]:
        """The kinds of ``fail_on`` that were found."""
        counts = self.counts()
        return [k for k in registry.names() if k in fail_on and counts[k]]

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
            **({"by": {"column": self.by, "groups": {
                g: {k: int(n) for k, n in zip(self.by_group()["finding"],
                                              self.by_group()[g], strict=True) if n}
                for g in self.groups}}} if self.by is not None else {}),
            "state": None if self.state is None else {
                "path": str(self.state.path),
                "started_from": None if self.state.base is None else self.state.base.isoformat(),
                "since": None if self.since is None else self.since.isoformat(),
            },
        }


def with_last_usage(rules: Rules, sources: Sequence[str] = (USAGE,)) -> Rules:
    """``rules`` plus a metric for each customer's last usage in each of ``sources``, so that
    it comes out of the same pass over the usage as the rules' own metrics."""
    metrics = {_last_usage(name): Metric(agg="max", column="timestamp",
                                         source=None if name == USAGE else name)
               for name in sources}
    return rules.model_copy(update={"metrics": {**rules.metrics, **metrics}})


def _last_usage(source: str) -> str:
    return LAST_USAGE_METRIC if source == USAGE else f"{LAST_USAGE_METRIC}:{source}"


def _with_last_usage_column(final: pl.DataFrame, sources: Sequence[str]) -> pl.DataFrame:
    """The last usage over every source, as the column LAST_USAGE_METRIC."""
    return final.with_columns(
        pl.max_horizontal([_last_usage(s) for s in sources]).alias(LAST_USAGE_METRIC))


def check(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: UsageSpecs = (),
    as_of: dt.date | None = None,
    *,
    tables: Tables | None = None,
    state_dir: str | Path | None = None,
    since: dt.date | None = None,
    prefer: str = "export",
    encoding: str | None = None,
    progress: Progress = no_progress,
    by: str | None = None,
) -> CheckResult:
    """Find what the rules' ``compliance:`` section asks about, for ``as_of`` (default: today).

    With ``state_dir``, the day starts from the state's stages as ``run --state`` would, hand
    changes in the export are ``override`` findings, and ``since`` adds the state's moves and
    hand changes from that day on; without ``usage_paths``, the metrics are those the state
    kept for ``as_of`` (when a run of that date kept them). Nothing is written. Bad data or
    rules raise the errors ``run`` raises, except unknown stages, which are findings.
    ``by``: a customer column (or metric, derived value) put first in the findings: each
    finding's customer's value on ``as_of`` (see `lifecycle_cli.report.groups`).
    """
    started = time.monotonic()
    as_of = as_of or dt.date.today()
    records = None
    start = None
    view = None
    if state_dir is not None:
        progress("reading the state")
        view = StateView.open(state_dir, empty_ok=True)
        start = view.start(as_of, prefer=prefer, rules=rules)
        records = read_state(view, as_of, since)
    given = [name for name in named_paths(usage_paths, USAGE, "--usage")
             if name in rules.usage_sources]
    usage_wanted = bool(given) and rules.compliance.no_usage_days is not None
    run_rules = with_last_usage(rules, given) if usage_wanted else rules
    loaded = load(run_rules, customers_path, usage_paths, encoding=encoding, progress=progress,
                  keep_unknown_stages=True, tables=tables)
    missing = compliance_column_problems(rules, loaded.typed.columns)
    if missing:
        raise RulesError(missing)
    settings = resolve(rules, loaded.typed.columns)
    metrics = None
    if view is not None and not usage_paths and rules.metrics:
        metrics = _kept_metrics(rules, view, as_of, loaded)
    # the day in memory, exactly as `run --state` decides it; customers whose starting stage
    # the rules don't name are set aside (unknown_stage findings)
    day = run_day(run_rules, loaded, as_of, start, set_aside_unknown=True, metrics=metrics,
                  progress=progress)
    if usage_wanted:
        day.final = _with_last_usage_column(day.final, given)
    progress("looking for findings")
    context = _context(rules, settings, loaded, day, as_of, start, records,
                       usage_given=bool(usage_paths), last_usage=usage_wanted)
    parts, not_checked = registry.look(context)
    table = collect_findings(parts)
    column: str | None = None
    groups: list[str] = []
    if by is not None:
        table, column, groups = _split(table, by, rules, loaded, day)
    return CheckResult(
        rules=rules,
        as_of=as_of,
        findings=table,
        settings=settings,
        customers=loaded.typed.height,
        input_paths=loaded.paths,
        warnings=list(day.prepared.warnings),  # what the day decided is in the findings
        not_checked=not_checked,
        state=records,
        since=since if records is not None else None,
        seconds=time.monotonic() - started,
        by=column,
        groups=groups,
    )


def _split(findings: pl.DataFrame, by: str, rules: Rules, loaded: Loaded, day: Day
           ) -> tuple[pl.DataFrame, str, list[str]]:
    """The findings with their customer's value of the column ``by`` names first (the
    export's columns, then the day's metrics and derived values), and the groups."""
    source = loaded.typed.drop(ROW, strict=False)
    computed = [c for c in day.final.columns
                if c not in source.columns and not c.startswith("__")]
    if computed:
        source = source.join(day.final.select(ID, *computed), on=ID, how="left")
    column = find_column(by, source.columns,
                         headers={rules.customer_column(c): c for c in source.columns},
                         where="the customers export, the metrics and the derived values")
    mapping = group_map(source, column)
    groups = group_names(mapping, column, source=source, avoid=findings.columns,
                         first=rules.segment_names if column == SEGMENT else ())
    check_free(column, findings.columns, "the findings")
    return attach(findings, mapping).rename({GROUP: column}), column, groups


def _kept_metrics(rules: Rules, view: StateView, as_of: dt.date, loaded: Loaded
                  ) -> MetricsResult | None:
    """Without a usage export, the metrics the state kept for the as-of date itself (a
    `run --state` of that date wrote them), so the check decides as that run did; None when
    it kept none, or not every metric of the rules."""
    stored = view.metrics(as_of) if as_of in view.days else None
    if stored is None or any(name not in stored.columns for name in rules.metrics):
        return None
    loaded.warnings = [w for w in loaded.warnings if not w.startswith("no usage export given")]
    return stored_metrics(rules, stored, loaded.typed.select(ID))


def _context(rules: Rules, settings: Settings, loaded: Loaded, day: Day, as_of: dt.date,
             start: Start | None, records: StateRecords | None, *, usage_given: bool,
             last_usage: bool) -> Context:
    """What the findings look at, from the day as `run_day` decided it (and the state).
    ``last_usage``: the rules were run `with_last_usage`."""
    after = customer_frame(day.final, rules, settings, as_of,
                           last_usage=LAST_USAGE_METRIC if last_usage else None)
    csv = line_of_row(loaded.customers.path, 0) is not None
    where = (  # the export's line, or the state, for an unknown stage
        pl.when(pl.col("__export_stage").eq_missing(pl.col(STAGE)))
        .then(pl.concat_str([pl.lit("source=export; line=" if csv else "source=export; row="),
                             (pl.col(ROW) + (2 if csv else 1)).cast(pl.String)]))
        .otherwise(pl.lit("source=state"))
    )
    start_stages = day.prepared.started
    if rules.segments:  # the segment chosen for the day (none for those set aside)
        start_stages = start_stages.join(day.prepared.state.select(ROW, SEGMENT), on=ROW,
                                         how="left", maintain_order="left")
    started_from = customer_frame(
        start_stages.with_columns(loaded.typed[STAGE].alias("__export_stage")), rules, settings,
        as_of, keep=[where.alias(WHERE)])
    set_aside = customer_frame(day.prepared.set_aside, rules, settings, as_of)
    columns = customer_frame(start_stages.head(0), rules, settings, as_of).collect_schema().names()
    everyone = pl.concat([after.select(columns), set_aside.select(columns)])
    moves = day.transitions.with_columns(pl.col("customer_id").cast(pl.String))
    overrides = day.overrides
    ctas = None
    if start is not None and records is not None:
        # each CTA's latest row after the as-of date's own, created and closed as `run --state`
        # would, and handled by people (snoozed, closed, reassigned)
        ctas = day.cta_latest
        overrides = _concat(records.overrides, overrides)
        moves = _concat(records.transitions, moves)
    return Context(
        as_of=as_of, rules=rules, settings=settings, start=started_from, after=after,
        everyone=everyone, moves=moves, overrides=overrides, ctas=ctas,
        usage_given=usage_given, state_given=records is not None,
    )


def _concat(earlier: pl.DataFrame | None, today: pl.DataFrame) -> pl.DataFrame:
    if earlier is None or earlier.height == 0:
        return today
    return pl.concat([earlier.select(today.columns), today], how="vertical_relaxed")


__all__ = [
    "FINDING_SCHEMA",
    "CheckResult",
    "Settings",
    "check",
    "collect_findings",
    "parse_fail_on",
    "resolve",
]
