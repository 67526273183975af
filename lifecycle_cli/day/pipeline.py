"""One day, end to end: the one place where a day of the lifecycle is assembled.

Given the rules, the exports as loaded (`lifecycle_cli.day.load`), where the
day starts (`lifecycle_cli.day.start.Start`: the state's stages and CTAs
before it) and the as-of date, :func:`run_day` returns the day: its stages,
transitions, metrics, CTAs, tasks, summary counts, and the records the state
keeps of it. `run`, nightly runs, `backfill`, `explain`, `diff`, `check` and
`report` all call it::

    from lifecycle_cli.day.load import load
    from lifecycle_cli.day.pipeline import run_day

    loaded = load(rules, "customers.csv", ["usage.csv"])
    day = run_day(rules, loaded, dt.date(2026, 11, 1))
    day.customers, day.transitions, day.ctas.ctas  # Polars DataFrames

The steps: merge the export's stages with the state's (`start.merge_start`),
compute the metrics (`metrics.compute`), compile the rules against the data
(`engine.compile`), add the values ``previous()`` reads from the start
(`Start.previous`), decide the moves (`engine.decide`), compute the built-in
and derived values on the final stages (`engine.builtins`), decide the CTAs
(`ctas.decide`), add the visits' totals and history columns
(`day.visits`, with ``history_columns``), and build the output tables.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import (
    BUILTINS,
    COMPUTED_COLUMNS,
    CTA_SNAPSHOT_SCHEMA,
    DAYS_IN_STAGE,
    ENTERED,
    EXPECTED_DAYS,
    ID,
    OVERDUE,
    PREVIOUS_STAGE,
    ROW,
    SEGMENT,
    STAGE,
    history_columns,
)
from ..ctas import snapshot
from ..ctas.decide import CtaResult, decide_ctas
from ..engine.builtins import final_values, with_builtins
from ..engine.compile import CompiledRules, compile_rules
from ..engine.decide import EngineResult, decide
from ..errors import DataError, LifecycleError, Problem, RulesError
from ..expressions import kind_of, previous_column
from ..inputs.customers import Customers
from ..metrics.compute import MetricsResult, compute_metrics, join_values
from ..rules.checks import compliance_column_problems
from ..rules.model import USAGE, Rules
from ..rules.scorecard import scorecard_columns
from ..sql import day as sql_day
from ..sql.backend import Backend
from ..suggest import did_you_mean
from .load import (
    Loaded,
    Progress,
    Tables,
    UsageSpecs,
    collector,
    load,
    no_progress,
    schema_of,
)
from .start import Start, carried_values, merge_start, stage_table
from .visits import add_totals, history_values, moves_from


@dataclass
class Prepared:
    """Everything a decision needs: the stages the day starts from, the metrics, and the
    rules compiled against the data."""

    rules: Rules
    as_of: dt.date
    loaded: Loaded
    start: Start
    started: pl.DataFrame  # every customer with the stage it starts from (input order)
    state: pl.DataFrame  # the customers decided on: attributes, stages, metrics
    set_aside: pl.DataFrame  # customers left out: a stage the rules don't name (see run_day)
    metrics: MetricsResult
    compiled: CompiledRules
    overrides: pl.DataFrame  # hand edits of the export (see start.merge_start)
    lagging: int  # customers whose export stage lags the state's: the state's was kept
    warnings: list[str] = field(default_factory=list)
    # the SQL engine that computes the metrics and the decision (`--engine`); None: Polars
    backend: Backend | None = None


@dataclass
class Day:
    """What one day decided, as tables, plus counts for the summary and the state."""

    prepared: Prepared
    engine: EngineResult
    final: pl.DataFrame  # every customer decided on, after the day, in input order
    ctas: CtaResult  # the CTAs the day created or closed, and the tasks of those created
    warnings: list[str] = field(default_factory=list)
    # per customer and stage, the visits that ended up to the day (`history_columns` only)
    totals: pl.DataFrame | None = None
    # the CTAs the day started from: the start's, and archived ones of visits it resumes
    cta_history: pl.DataFrame | None = None
    # how to build the customers output and the stage table (`customers`, `stages`)
    build_customers: Callable[[], pl.DataFrame] | None = field(default=None, repr=False)
    build_stages: Callable[[], pl.DataFrame] | None = field(default=None, repr=False)

    # The outputs are built when first read: `check` reads neither (0.2-0.3 s at 1M).
    @functools.cached_property
    def customers(self) -> pl.DataFrame:
        """The customers output, in the export's own columns."""
        assert self.build_customers is not None
        return self.build_customers()

    @functools.cached_property
    def stages(self) -> pl.DataFrame:
        """The state's stage table after the day."""
        assert self.build_stages is not None
        return self.build_stages()

    @property
    def rules(self) -> Rules:
        return self.prepared.rules

    @property
    def as_of(self) -> dt.date:
        return self.prepared.as_of

    @property
    def start(self) -> Start:
        return self.prepared.start

    @property
    def metrics(self) -> MetricsResult:
        return self.prepared.metrics

    @property
    def compiled(self) -> CompiledRules:
        return self.prepared.compiled

    @property
    def overrides(self) -> pl.DataFrame:
        return self.prepared.overrides

    @property
    def lagging(self) -> int:
        return self.prepared.lagging

    @property
    def transitions(self) -> pl.DataFrame:
        return self.engine.transitions

    @property
    def input_paths(self) -> list[Path]:
        return self.prepared.loaded.paths

    @property
    def id_column(self) -> str:
        """The export's header of the customer id."""
        return self.prepared.loaded.customers.external[ID]

    @property
    def schema(self) -> dict[str, dict[str, str]]:
        """"customers"/"usage" -> the export's header -> kind (number, text, date...)."""
        return schema_of(self.rules, self.prepared.loaded)

    @property
    def final_stages(self) -> pl.DataFrame:
        """ID, STAGE, ENTERED after the day, in input order."""
        return self.final.select(ID, STAGE, ENTERED)

    @property
    def stages_before(self) -> dict[str | None, int]:
        return dict(self.prepared.state.group_by(STAGE).len().iter_rows())

    @property
    def stages_after(self) -> dict[str, int]:
        return dict(self.final.group_by(STAGE).len().iter_rows())

    @property
    def segments_after(self) -> dict[str, dict[str, int]]:
        """With `segments:`, the customers of each segment by stage after the day (segments
        in the rules' order; empty without)."""
        if not self.rules.segments:
            return {}
        out: dict[str, dict[str, int]] = {name: {} for name in self.rules.segment_names}
        for segment, stage, n in self.final.group_by(SEGMENT, STAGE).len().iter_rows():
            out[segment][stage] = n
        return out

    @property
    def moves(self) -> pl.DataFrame:
        """Moves by rule (initial assignments included), most first."""
        return (
            self.transitions.group_by("rule_id")
            .agg(pl.len().alias("customers"))
            .sort(["customers", "rule_id"], descending=[True, False])
        )

    @property
    def moved_customers(self) -> int:
        """Customers that left a stage (first assignments are not moves)."""
        return self.transitions.filter(pl.col("hop") > 0)["customer_id"].n_unique()

    @property
    def cta_counts(self) -> pl.DataFrame:
        """CTAs created and closed on the day, by CTA rule (in the rules' order)."""
        order = list(dict.fromkeys(c.id for _, c, _ in self.rules.cta_rules()))
        frame = pl.DataFrame({"rule_id": order}, schema={"rule_id": pl.String})
        counts = self.ctas.ctas.group_by("rule_id").agg(
            (pl.col("status") == "open").sum().alias("created"),
            (pl.col("status") == "closed").sum().alias("closed"),
        )
        # rules removed since a CTA was created still close theirs: list them last
        gone = counts.join(frame, on="rule_id", how="anti").sort("rule_id").select("rule_id")
        return pl.concat([frame, gone]).join(counts, on="rule_id", how="left",
                                             maintain_order="left").fill_null(0)

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """The outputs: customers, transitions, ctas and tasks."""
        return {"customers": self.customers, "transitions": self.transitions,
                "ctas": self.ctas.ctas, "tasks": self.ctas.tasks}

    def records(self) -> dict[str, pl.DataFrame]:
        """What the state keeps of the day: its stage table, and its transitions, hand
        edits, CTA events and tasks with customer ids as text; with metrics, their values
        (``metrics``); the values of the other names that ``previous()`` reads and the
        scorecard's columns (``values``); with ``history_columns``, the visits that ended
        (``totals``)."""
        records = {
            "stages": self.stages,
            "transitions": _text_ids(self.transitions),
            "overrides": self.overrides,
            "ctas": _text_ids(self.ctas.ctas),
            "tasks": _text_ids(self.ctas.tasks),
        }
        if self.rules.metrics:
            records["metrics"] = metrics_record(self.metrics.values, list(self.rules.metrics))
        kept = [n for n in self.rules.previous_names if n not in self.rules.metrics]
        # the segment and the scorecard's columns every day: their history for previous()
        # and reports
        kept += [n for n in ([SEGMENT] if self.rules.segments else []) if n not in kept]
        kept += [n for n in scorecard_columns(self.rules) if n not in kept]
        if kept:
            records["values"] = self.final.select(
                pl.col(ID).cast(pl.String).alias("customer_id"), *kept)
        if self.totals is not None:
            records["totals"] = self.totals
        return records

    @functools.cached_property
    def cta_snapshot(self) -> snapshot.CtaSnapshot:
        """Each CTA's latest row and the open CTAs' tasks after the day: the snapshot the
        day starts from, the day's CTA events, then the hand actions the state holds for the
        day (`Start.actions`). What the state records as the day's CTA snapshot."""
        start = self.start
        before = (None if self.cta_history is None else
                  snapshot.make(self.cta_history, start.tasks, complete=start.archived is None))
        return snapshot.after(before, _text_ids(self.ctas.ctas), _text_ids(self.ctas.tasks),
                              start.actions, self.as_of, stages=self.stages)

    @functools.cached_property
    def cta_latest(self) -> pl.DataFrame:
        """Each CTA's latest row after the day, as in :attr:`cta_snapshot` (its open CTAs
        are the same rows) but without tasks or the archive: for the readers of the CTAs
        alone (`check`), at a fraction of the cost (no stage table, no tasks)."""
        return snapshot.latest_after(self.cta_history, _text_ids(self.ctas.ctas),
                                     self.start.actions, self.as_of)

    def next_start(self) -> Start:
        """Where the next day starts, as a state that recorded this day gives it: the day's
        stage table and CTA snapshot, the archive so far, the values ``previous()`` reads
        and the visits' totals. A backfill carries days on with it."""
        records = self.records()
        snap, earlier = self.cta_snapshot, self.start.archived

        def archived(visits: pl.DataFrame) -> pl.DataFrame:
            found = snap.archived.join(visits, on=snapshot.VISIT, how="semi", nulls_equal=True)
            return found if earlier is None else pl.concat([earlier(visits), found],
                                                           how="diagonal_relaxed")

        return Start(
            stages=self.stages,
            ctas=snap.ctas,
            tasks=snap.tasks,
            base=self.as_of,
            prefer=self.start.prefer,
            archived=archived,
            previous=carried_values(records.get("metrics"), records.get("values"),
                                    self.rules.previous_names),
            totals=records.get("totals"),
        )


def metrics_record(values: pl.DataFrame, names: Sequence[str]) -> pl.DataFrame:
    """The metrics the state keeps for a day: ``customer_id`` (text) and each metric, floats
    rounded as in the customers output."""
    return values.select(
        pl.col(ID).cast(pl.String).alias("customer_id"),
        *[pl.col(n).round(9) if values.schema[n] in (pl.Float32, pl.Float64) else pl.col(n)
          for n in names if n in values.columns],
    )


def _text_ids(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("customer_id").cast(pl.String))


def prepare(
    rules: Rules,
    loaded: Loaded,
    as_of: dt.date,
    start: Start | None = None,
    *,
    metrics: MetricsResult | None = None,
    set_aside_unknown: bool = False,
    problems: list[Problem] | None = None,
    progress: Progress = no_progress,
    backend: Backend | None = None,
) -> Prepared:
    """The day up to its decision: starting stages, metrics, rules compiled on the data.

    ``metrics``: already computed for this day (a backfill's replay, `diff`'s second
    rule set). ``set_aside_unknown``: customers whose starting stage the rules don't
    name are left out of the day (`check` reports them) instead of being an error.
    With ``problems`` (for `validate`), go on past problems in one step to find those
    of the next, and raise them all together at the end. ``backend``: an SQL engine
    (`lifecycle_cli.sql`) computes the metrics here and the decision in
    :func:`decide_day`; the rest of the day stays in Polars.
    """
    start = start or Start()
    collect = collector(problems)
    merged = merge_start(loaded.typed, start, as_of)
    typed = merged.typed
    unknown = pl.col(STAGE).is_not_null() & ~pl.col(STAGE).is_in(rules.stage_names)
    set_aside = typed.filter(unknown) if set_aside_unknown else typed.head(0)
    if set_aside_unknown:
        typed = typed.filter(~unknown)
    elif start.stages is not None:
        try:
            _check_state_stages(typed, rules)
        except DataError as error:
            collect(error)
    if problems is not None:  # `validate`: also what only `check` reads
        problems.extend(compliance_column_problems(rules, typed.columns))
    if metrics is None:
        progress("computing metrics from usage")
        try:
            if backend is not None:
                metrics = sql_day.compute(backend, rules, loaded.sources, typed.select(ID),
                                          as_of)
            else:
                metrics = compute_metrics(rules, loaded.sources, typed.select(ID), as_of)
        except DataError as error:
            collect(error)
            metrics = compute_metrics(rules, None, typed.select(ID), as_of)
    warnings = [*(w.render() for w in rules.warnings), *loaded.warnings,
                *usage_warnings(rules, loaded, metrics)]
    state, compiled = _state_and_rules(rules, as_of, loaded.customers, typed, metrics, collect)
    state = _with_previous(state, start, rules, compiled, warnings)
    if problems:
        raise LifecycleError(problems)
    assert compiled is not None  # a RulesError was raised or collected otherwise
    return Prepared(rules, as_of, loaded, start, merged.typed, state, set_aside, metrics,
                    compiled, merged.overrides, merged.lagging, warnings, backend)


def run_day(
    rules: Rules,
    loaded: Loaded,
    as_of: dt.date,
    start: Start | None = None,
    *,
    metrics: MetricsResult | None = None,
    set_aside_unknown: bool = False,
    trace: bool = False,
    progress: Progress = no_progress,
    backend: Backend | None = None,
) -> Day:
    """Decide one day: SPEC "How a run decides", steps 1 to 5, on ``loaded`` for ``as_of``,
    starting from ``start`` (default: no state). With ``trace``, the engine keeps every
    hop's verdicts (for `explain`). See :func:`prepare` for the other options.
    """
    prepared = prepare(rules, loaded, as_of, start, metrics=metrics,
                       set_aside_unknown=set_aside_unknown, progress=progress,
                       backend=backend)
    return decide_day(prepared, trace=trace, progress=progress)


def decide_day(prepared: Prepared, *, trace: bool = False,
               progress: Progress = no_progress) -> Day:
    """The rest of :func:`run_day`, for a day already prepared."""
    progress("applying transition rules")
    if prepared.backend is not None and not trace:  # `explain`'s trace is Polars' own
        engine = sql_day.decide(prepared.backend, prepared.state, prepared.compiled)
    else:
        engine = decide(prepared.state, prepared.compiled, trace=trace)
    progress("deciding CTAs")
    state = engine.state
    if not state[ROW].is_sorted():  # the Polars engine keeps the state's order; SQL may not
        state = state.sort(ROW)
    final = final_values(state, prepared.compiled)
    # a customer enters its stage by a move (or initial assignment), or by a hand edit in
    # the export that the day kept (see start.merge_start)
    entered = pl.concat([
        engine.transitions["customer_id"].cast(pl.String),
        prepared.overrides.filter(pl.col("kept") == "export")["customer_id"].cast(pl.String),
    ]).unique()
    history = _cta_history(prepared)
    ctas = decide_ctas(final, prepared.compiled, history=history, entered_now=entered)
    progress("building outputs")
    rules = prepared.rules
    decided = final
    totals = None
    if rules.history_columns:
        moves = moves_from(engine.transitions, prepared.overrides)
        totals = add_totals(prepared.start.totals, moves)
        final = pl.concat([final, history_values(final, totals, rules.stage_names)],
                          how="horizontal")
    return Day(
        prepared=prepared,
        engine=engine,
        final=final,
        ctas=ctas,
        warnings=[*prepared.warnings, *_warnings(engine, final, rules)],
        totals=totals,
        cta_history=history,
        build_customers=lambda: customer_table(prepared.loaded.customers, final, rules),
        build_stages=lambda: stage_table(decided, prepared.start.stages, prepared.as_of,
                                         export=prepared.loaded.export_stages),
    )


def _cta_history(prepared: Prepared) -> pl.DataFrame | None:
    """The CTAs a day starts from: the start's (the state's snapshot), plus the archived CTAs
    of the visits the day resumes. A visit the tool begins today starts on the as-of date
    and is new; a hand edit in the export may put a customer back into an old visit (its
    stage and start date, or a stage without a date), whose CTAs the rules must not create
    again (see `lifecycle_cli.ctas.snapshot`)."""
    start = prepared.start
    if start.ctas is None or start.archived is None or start.stages is None:
        return start.ctas
    visit = ["customer_id", "stage", "stage_entered_at"]
    base = start.stages.select(visit)
    now = prepared.started.select(pl.col(ID).cast(pl.String).alias("customer_id"),
                                  pl.col(STAGE).alias("stage"),
                                  pl.col(ENTERED).alias("stage_entered_at"))
    resumed = (
        now.filter(pl.col("stage").is_not_null()
                   & pl.col("stage_entered_at").ne_missing(pl.lit(prepared.as_of)))
        .join(base, on=visit, how="anti", nulls_equal=True)
        .join(base.select("customer_id"), on="customer_id", how="semi")  # others have none
    )
    if resumed.height == 0:
        return start.ctas
    found = start.archived(resumed)  # an archive rebuilt twice may hold a CTA twice
    found = found.unique(subset="cta_id", keep="last", maintain_order=True).filter(
        ~pl.col("cta_id").is_in(start.ctas["cta_id"].implode()))
    if found.height == 0:
        return start.ctas
    return pl.concat([snapshot.conform(start.ctas, CTA_SNAPSHOT_SCHEMA),
                      snapshot.conform(found, CTA_SNAPSHOT_SCHEMA)])


def check_against_data(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: UsageSpecs = (),
    as_of: dt.date | None = None,
    *,
    encoding: str | None = None,
    progress: Progress = no_progress,
    tables: Tables | None = None,
) -> Prepared:
    """`validate` with data: read the exports and prepare a day (metrics, the rules compiled
    against the data) without deciding it; raise every problem found, together."""
    problems: list[Problem] = []
    loaded = load(rules, customers_path, usage_paths, problems=problems, encoding=encoding,
                  progress=progress, tables=tables)
    return prepare(rules, loaded, as_of or dt.date.today(), problems=problems,
                   progress=progress)


def reads_alike(a: Rules, b: Rules) -> bool:
    """Whether two rule sets read the exports into the same customers and metrics.

    They do when they map the same columns (sources, lookups and attribute tables
    included), take days in the same time zone, know
    the same stages (the customers read checks the stage values) and define the
    same metrics; derived values and transitions may differ.
    """
    return (
        a.columns == b.columns
        and (a.customers, a.sources, a.lookups, a.attributes)
        == (b.customers, b.sources, b.lookups, b.attributes)
        and a.timezone == b.timezone
        and set(a.stage_names) == set(b.stage_names)
        and {k: m.model_dump() for k, m in a.metrics.items()}
        == {k: m.model_dump() for k, m in b.metrics.items()}
    )


def _state_and_rules(
    rules: Rules,
    as_of: dt.date,
    customers: Customers,
    typed: pl.DataFrame,
    metrics: MetricsResult,
    collect: Callable[[LifecycleError], None],
) -> tuple[pl.DataFrame, CompiledRules | None]:
    """The decision state (attributes and metrics) and the rules compiled against it."""
    computed = set(rules.derived) | set(rules.metrics) | set(COMPUTED_COLUMNS) | set(BUILTINS)
    computed |= set(scorecard_columns(rules))
    if rules.history_columns:  # yesterday's output as today's input: computed again
        computed |= set(history_columns(rules.stage_names))
    attributes = [c for c in typed.columns if c not in computed or c in (STAGE, ENTERED)]
    state = join_values(typed.select(attributes), metrics.values)
    attribute_kinds = {
        c: kind_of(t)
        for c, t in typed.select(attributes).schema.items()
        if c not in (ROW, STAGE, ENTERED)
    }
    compiled = None
    try:
        compiled = compile_rules(
            rules,
            attribute_kinds,
            metrics.kinds,
            as_of,
            explain_column=lambda c: _explain_text_column(customers, c),
        )
    except RulesError as error:
        collect(error)
    if compiled is not None and rules.segments:
        # chosen once, from the export and the metrics: the decision reads it
        state = state.with_columns(compiled.segment_expr().alias(SEGMENT))
    return state, compiled


def _with_previous(state: pl.DataFrame, start: Start, rules: Rules,
                   compiled: CompiledRules | None, warnings: list[str]) -> pl.DataFrame:
    """Add ``previous(x)`` for each name ``x`` that the rules' ``previous()`` reads: its value
    at the state's previous run (``start.previous``), as today's type; NULL for a customer
    that run did not have, and for everyone without a previous run."""
    names = rules.previous_names
    if not names:
        return state
    carried = start.previous
    have = [n for n in names if carried is not None and n in carried.columns]
    if carried is not None and have:
        key = "__previous_key"
        state = state.with_columns(pl.col(ID).cast(pl.String).alias(key)).join(
            carried.select(pl.col("customer_id").alias(key),
                           *[pl.col(n).alias(previous_column(n)) for n in have]),
            on=key, how="left", maintain_order="left").drop(key)
    missing = [n for n in names if n not in have]
    if missing and start.base is not None:
        warnings.append(
            f"the state's run of {start.base} kept no value of {', '.join(missing)}: "
            f"previous({missing[0]}) is NULL for every customer in this run (it is kept "
            "from this run on)")
    state = state.with_columns(pl.lit(None).alias(previous_column(n)) for n in missing)
    if compiled is None:
        return state
    # today's types: a value kept under another type (the rules or the export changed)
    # becomes NULL rather than a wrong value
    today = with_builtins(state.lazy(), compiled).collect_schema()
    return state.with_columns(
        pl.col(previous_column(n)).cast(today[n], strict=False)
        if kind_of(state.schema[previous_column(n)]) == kind_of(today[n])
        else pl.lit(None, dtype=today[n]).alias(previous_column(n))
        for n in names if n in today)


def usage_warnings(rules: Rules, loaded: Loaded, metrics: MetricsResult) -> list[str]:
    """Usage rows that count for nobody: a source none of whose rows belongs to a customer
    (a wrong id column?), and rows whose key a source's lookup lacks."""
    out = []
    for name, counts in metrics.by_source.items():
        usage = loaded.sources.get(name)
        rows, unmatched = counts["rows"], counts["unmatched_key"]
        if usage is not None and usage.lookup is not None and unmatched:
            lookup = usage.lookup
            out.append(
                f"{unmatched:,} of the {rows:,} rows of {usage.label()} have a {lookup.key} "
                f"that the lookup '{lookup.name}' ({lookup.path}) does not have: they count "
                "for no customer")
        elif rows and counts["unknown_customer"] == rows:
            column = rules.source_column(name, ID)
            where = ("columns: {usage: {customer_id: ...}}" if name == USAGE
                     and USAGE not in rules.sources else
                     f"sources: {{{name}: {{columns: {{customer_id: ...}}}}}}")
            what = "usage rows" if name == USAGE else f"rows of the source '{name}'"
            out.append(
                f"none of the {rows:,} {what} belongs to a customer in the "
                f"customers export: is '{column}' the usage column that holds "
                f"the values of '{loaded.customers.external[ID]}'? ({where})"
            )
    return out


def _check_state_stages(typed: pl.DataFrame, rules: Rules) -> None:
    """Stages that came from the state must still be named by the rules."""
    names = rules.stage_names
    unknown = (
        typed.filter(pl.col(STAGE).is_not_null() & ~pl.col(STAGE).is_in(names))
        .group_by(STAGE).len().sort(["len", STAGE], descending=[True, False])
    )
    if unknown.height:
        raise DataError([
            Problem(
                f"the state holds the stage '{stage}' for {n:,} customer(s), and the rules "
                "don't name it",
                hint=(did_you_mean(stage, names) or "stages: " + ", ".join(names))
                + "; keep the old name in the rules, or give those customers a stage in "
                "the export",
            )
            for stage, n in unknown.iter_rows()
        ])


def _explain_text_column(customers: Customers, column: str) -> str | None:
    """For a text column used as a date or number: which values are in the way."""
    typed = customers.typed
    if (column not in typed.columns or typed.schema[column] != pl.String
            or column in customers.attribute_columns):  # its lines are another file's
        return None
    values = pl.col(column)
    odd = typed.filter(
        values.is_not_null()
        & values.str.strip_chars().str.to_date("%Y-%m-%d", strict=False).is_null()
        & values.str.strip_chars().cast(pl.Float64, strict=False).is_null()
    )
    if odd.height == 0:
        return None
    shown = ", ".join(
        f"{customers.where(r)}: {v!r}" for r, v in odd.select(ROW, column).head(3).iter_rows()
    )
    return f"'{column}' holds text such as {shown}; fix these values in the export"


def customer_table(customers: Customers, final: pl.DataFrame, rules: Rules) -> pl.DataFrame:
    """The customers output: the export's columns and values, stages updated, computed after."""
    raw = customers.raw
    if final.height != raw.height:  # a day for some customers only (`explain`)
        raw = raw.with_row_index(ROW).join(final.select(ROW), on=ROW, how="semi",
                                           maintain_order="left").drop(ROW)
    computed = [
        PREVIOUS_STAGE,
        DAYS_IN_STAGE,
        EXPECTED_DAYS,
        OVERDUE,
        *([SEGMENT] if rules.segments else []),
        *rules.derived,
        *scorecard_columns(rules),
        *[m for m in rules.metrics if m in final.columns],
        *(history_columns(rules.stage_names) if rules.history_columns else []),
    ]
    stage_col, entered_col = customers.external[STAGE], customers.external[ENTERED]
    keep = [c for c in raw.columns if c not in computed or c in (stage_col, entered_col)]
    out = raw.select(keep).with_columns(
        final[STAGE].alias(stage_col),
        final[ENTERED].alias(entered_col),
    )
    # sums of floats carry binary noise (145.60000000000002); nobody wants to read it
    tidy = [
        pl.col(c).round(9) if final.schema[c] in (pl.Float32, pl.Float64) else pl.col(c)
        for c in computed
    ]
    return pl.concat([out, final.select(tidy)], how="horizontal")


def _warnings(engine: EngineResult, final: pl.DataFrame, rules: Rules) -> list[str]:
    out = []
    if engine.loops.height:
        shown = "; ".join(
            f"{cid} in {stage}: rule '{rule}' would return it to {to}"
            for cid, stage, rule, to in engine.loops.head(5).iter_rows()
        )
        rules_in_loop = sorted(set(engine.loops["rule_id"]))
        out.append(
            f"{engine.loops.height:,} customer(s) stopped moving to avoid a loop "
            f"(rules: {', '.join(rules_in_loop)}): {shown}"
            + (" ..." if engine.loops.height > 5 else "")
        )
    if engine.pending.height:
        by_rule = ", ".join(
            f"{r} ({n})"
            for r, n in engine.pending.group_by("rule_id")
            .len()
            .sort(["len", "rule_id"], descending=[True, False])
            .iter_rows()
        )
        out.append(
            f"{engine.pending.height:,} customer(s) would still move after max_hops="
            f"{rules.effective_max_hops}: {by_rule}"
        )
    future = final.filter(pl.col(DAYS_IN_STAGE) < 0).height
    if future:
        out.append(
            f"{future:,} customer(s) entered their stage after the as-of date "
            "(negative days_in_stage)"
        )
    unknown = final.filter(pl.col(ENTERED).is_null()).height
    if unknown:
        out.append(
            f"{unknown:,} customer(s) have a stage but no stage_entered_at: their "
            "days_in_stage is unknown and time-based rules do not apply to them"
        )
    return out


__all__ = ["Day", "Prepared", "check_against_data", "decide_day", "prepare", "reads_alike",
           "run_day"]
