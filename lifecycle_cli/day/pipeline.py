"""A run, end to end: read the exports, compute metrics, decide, build the output tables.

This is the library's main entry point::

    from lifecycle_cli import load_rules, run
    result = run(load_rules("rules/default.yaml"), "customers.csv", ["usage.csv"])
    result.customers, result.transitions  # Polars DataFrames
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import (
    BUILTINS,
    COMPUTED_COLUMNS,
    DAYS_IN_STAGE,
    ENTERED,
    EXPECTED_DAYS,
    ID,
    OVERDUE,
    PREVIOUS_STAGE,
    ROW,
    STAGE,
)
from ..ctas.decide import CtaResult, decide_ctas
from ..engine.builtins import final_values
from ..engine.compile import CompiledRules, compile_rules
from ..engine.decide import EngineResult, decide
from ..errors import DataError, LifecycleError, Problem, RulesError
from ..expressions import Kind, kind_of
from ..inputs.csvtext import codec_name
from ..inputs.customers import Customers, read_customers
from ..inputs.usage import Usage, scan_usage
from ..metrics.compute import MetricsResult, compute_metrics
from ..rules.checks import compliance_column_problems
from ..rules.model import Rules
from ..suggest import did_you_mean
from .start import empty_overrides, merge_start

Progress = Callable[[str], None]


@dataclass
class Prepared:
    """Everything a decision needs: the customers' state and the compiled rules."""

    rules: Rules
    as_of: dt.date
    customers: Customers
    usage: Usage | None
    metrics: MetricsResult
    state: pl.DataFrame
    compiled: CompiledRules
    warnings: list[str] = field(default_factory=list)
    overrides: pl.DataFrame = field(default_factory=empty_overrides)
    lagging: int = 0  # customers whose export stage lags the state's (see merge_start)


@dataclass
class RunResult:
    """What a run decided, as tables, plus counts for the summary."""

    rules: Rules
    as_of: dt.date
    customers: pl.DataFrame  # the customers output, in the export's own columns
    transitions: pl.DataFrame
    engine: EngineResult
    metrics: MetricsResult
    stages_before: dict[str | None, int]
    stages_after: dict[str, int]
    input_paths: list[Path]
    id_column: str  # the export's header of the customer id
    warnings: list[str] = field(default_factory=list)
    # customers whose stage in the export differs from the state's (runs with a state)
    overrides: pl.DataFrame = field(default_factory=empty_overrides)
    lagging: int = 0  # customers whose export stage lags the state's: the state's was kept
    # ID, STAGE, ENTERED after the run, in input order
    final_stages: pl.DataFrame = field(default_factory=pl.DataFrame)
    # "customers"/"usage" -> the export's header -> kind (number, text, date...)
    schema: dict[str, dict[str, str]] = field(default_factory=dict)
    # the CTAs this run created or closed, and the tasks of those it created
    ctas: CtaResult | None = None

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
        return self.transitions.filter(pl.col("hop") > 0)["customer_id"].n_unique()

    @property
    def cta_counts(self) -> pl.DataFrame:
        """CTAs created and closed in this run, by CTA rule (in the rules' order)."""
        order = [c.id for c in self.rules.ctas]
        frame = pl.DataFrame({"rule_id": order}, schema={"rule_id": pl.String})
        events = self.ctas.ctas if self.ctas is not None else pl.DataFrame(
            schema={"rule_id": pl.String, "status": pl.String})
        counts = events.group_by("rule_id").agg(
            (pl.col("status") == "open").sum().alias("created"),
            (pl.col("status") == "closed").sum().alias("closed"),
        )
        # rules removed since a CTA was created still close theirs: list them last
        gone = counts.join(frame, on="rule_id", how="anti").sort("rule_id").select("rule_id")
        return pl.concat([frame, gone]).join(counts, on="rule_id", how="left",
                                             maintain_order="left").fill_null(0)

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        tables = {"customers": self.customers, "transitions": self.transitions}
        if self.ctas is not None:
            tables |= {"ctas": self.ctas.ctas, "tasks": self.ctas.tasks}
        return tables


def _noop(_: str) -> None:
    pass


@dataclass
class Loaded:
    """The exports as read, before any as-of date comes in: read once, run for many days."""

    customers: Customers
    typed: pl.DataFrame  # the customers the run is for: all, or the selected ids
    usage: Usage | None
    warnings: list[str] = field(default_factory=list)


def _collector(problems: list[Problem] | None) -> Callable[[LifecycleError], None]:
    """Raise at once, or (for `validate`) keep the problems and go on."""

    def collect(error: LifecycleError) -> None:
        if problems is None:
            raise error
        problems.extend(error.problems)

    return collect


def load(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: Sequence[str | Path] = (),
    *,
    only_ids: Sequence[str] | None = None,
    problems: list[Problem] | None = None,
    encoding: str | None = None,
    progress: Progress = _noop,
    keep_unknown_stages: bool = False,
) -> Loaded:
    """Read the customers export and open the usage exports (lazily).

    ``encoding`` names the text encoding of CSV exports (default UTF-8), e.g. ``cp1252``.
    ``keep_unknown_stages``: see `lifecycle_cli.inputs.read_customers`.
    """
    codec_name(encoding)  # an unknown encoding is an option error, before any reading
    collect = _collector(problems)
    warnings: list[str] = []
    progress("reading customers")
    customers = read_customers(customers_path, rules, problems_out=problems, encoding=encoding,
                               keep_unknown_stages=keep_unknown_stages)
    warnings += customers.warnings
    typed = customers.typed
    if only_ids is not None:
        typed = _select_ids(customers, only_ids)
    usage = None
    if usage_paths:
        try:
            usage = scan_usage(list(usage_paths), rules, customers.id_dtype, encoding=encoding)
        except DataError as error:
            collect(error)
        if usage is not None and only_ids is not None:
            usage = Usage(
                usage.paths, usage.frame.filter(pl.col(ID).is_in(typed[ID].implode())), usage.schema
            )
    elif rules.metrics:
        warnings.append(
            f"no usage export given: every metric takes its default ({', '.join(rules.metrics)})"
        )
    return Loaded(customers, typed, usage, warnings)


def prepare(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: Sequence[str | Path] = (),
    as_of: dt.date | None = None,
    *,
    only_ids: Sequence[str] | None = None,
    check_all: bool = False,
    encoding: str | None = None,
    progress: Progress = _noop,
    previous: pl.DataFrame | None = None,
    prefer: str = "export",
) -> Prepared:
    """Read the exports, compute metrics and compile the rules against the data.

    With ``check_all`` (for `validate`), go on past problems in one step to
    find those of the next, and raise them all together. ``previous`` is a
    state's stage table (see `lifecycle_cli.state.merge_start`): it fills the
    stages the export leaves empty.
    """
    problems: list[Problem] | None = [] if check_all else None
    loaded = load(rules, customers_path, usage_paths, only_ids=only_ids, problems=problems,
                  encoding=encoding, progress=progress)
    return prepare_loaded(rules, loaded, as_of, previous=previous, prefer=prefer,
                          problems=problems, progress=progress)


def prepare_loaded(
    rules: Rules,
    loaded: Loaded,
    as_of: dt.date | None = None,
    *,
    previous: pl.DataFrame | None = None,
    prefer: str = "export",
    problems: list[Problem] | None = None,
    progress: Progress = _noop,
    metrics: MetricsResult | None = None,
) -> Prepared:
    """`prepare` for exports already read; ``metrics`` when already computed."""
    as_of = as_of or dt.date.today()
    collect = _collector(problems)
    customers, usage = loaded.customers, loaded.usage
    typed, overrides, lagging = merge_start(loaded.typed, previous, as_of, id_column=ID,
                                   stage_column=STAGE, entered_column=ENTERED, prefer=prefer)
    if previous is not None:
        try:
            _check_state_stages(typed, rules)
        except DataError as error:
            collect(error)
    if problems is not None:  # `validate`: also what only `check` reads
        problems.extend(compliance_column_problems(rules, typed.columns))
    if metrics is None:
        progress("computing metrics from usage")
        try:
            metrics = compute_metrics(rules, usage, typed.select(ID), as_of)
        except DataError as error:
            collect(error)
            metrics = compute_metrics(rules, None, typed.select(ID), as_of)
    warnings = list(loaded.warnings)
    if metrics.usage_rows and metrics.unknown_customer_rows == metrics.usage_rows:
        warnings.append(
            f"none of the {metrics.usage_rows:,} usage rows belongs to a customer in the "
            f"customers export: is '{rules.usage_column(ID)}' the usage column that holds "
            f"the values of '{customers.external[ID]}'? (columns: {{usage: {{customer_id: ...}}}})"
        )

    state, compiled = _state_and_rules(rules, as_of, customers, typed, metrics, collect)
    if problems:
        raise LifecycleError(problems)
    assert compiled is not None  # a RulesError was raised or collected otherwise
    return Prepared(rules, as_of, customers, usage, metrics, state, compiled, warnings,
                    overrides, lagging)


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
    attributes = [c for c in typed.columns if c not in computed or c in (STAGE, ENTERED)]
    state = typed.select(attributes).join(metrics.values, on=ID, how="left", maintain_order="left")
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
    return state, compiled


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


def reads_alike(a: Rules, b: Rules) -> bool:
    """Whether two rule sets read the exports into the same customers and metrics.

    They do when they map the same columns, take days in the same time zone, know
    the same stages (the customers read checks the stage values) and define the
    same metrics; derived values and transitions may differ.
    """
    return (
        a.columns == b.columns
        and a.timezone == b.timezone
        and set(a.stage_names) == set(b.stage_names)
        and {k: m.model_dump() for k, m in a.metrics.items()}
        == {k: m.model_dump() for k, m in b.metrics.items()}
    )


def prepare_alike(prepared: Prepared, rules: Rules) -> Prepared | None:
    """``prepared`` for other ``rules``, reusing its exports and metrics; no file is read again.

    Returns None when the rules read the exports differently (see :func:`reads_alike`):
    then call :func:`prepare` with them.
    """
    if not reads_alike(prepared.rules, rules):
        return None
    customers = prepared.customers
    typed = customers.typed.filter(pl.col(ROW).is_in(prepared.state[ROW].implode()))

    def collect(error: LifecycleError) -> None:
        raise error

    state, compiled = _state_and_rules(
        rules, prepared.as_of, customers, typed, prepared.metrics, collect
    )
    assert compiled is not None
    return Prepared(
        rules,
        prepared.as_of,
        customers,
        prepared.usage,
        prepared.metrics,
        state,
        compiled,
        list(prepared.warnings),
        prepared.overrides,
    )


def _select_ids(customers: Customers, ids: Sequence[str]) -> pl.DataFrame:
    typed = customers.typed
    wanted = pl.Series(list(ids), dtype=pl.String)
    found = typed.filter(pl.col(ID).cast(pl.String).is_in(wanted.implode()))
    missing = sorted(set(ids) - set(found[ID].cast(pl.String).to_list()))
    if missing:
        known = typed[ID].cast(pl.String).to_list()
        raise DataError(
            [
                Problem(
                    f"no customer with id '{m}'",
                    file=str(customers.path),
                    column=customers.external[ID],
                    hint=did_you_mean(m, known),
                )
                for m in missing
            ]
        )
    return found


def _explain_text_column(customers: Customers, column: str) -> str | None:
    """For a text column used as a date or number: which values are in the way."""
    typed = customers.typed
    if column not in typed.columns or typed.schema[column] != pl.String:
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


def run(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: Sequence[str | Path] = (),
    as_of: dt.date | None = None,
    *,
    encoding: str | None = None,
    progress: Progress = _noop,
    previous: pl.DataFrame | None = None,
    prefer: str = "export",
) -> RunResult:
    """Apply ``rules`` to the exports for ``as_of`` (default: today).

    ``previous`` is a state's stage table to start from (see `prepare`).
    """
    prepared = prepare(rules, customers_path, usage_paths, as_of, encoding=encoding,
                       progress=progress, previous=previous, prefer=prefer)
    return run_prepared(prepared, progress=progress)


def run_prepared(prepared: Prepared, *, progress: Progress = _noop) -> RunResult:
    """Decide on ``prepared`` exports (see :func:`prepare`) and build the output tables."""
    progress("applying transition rules")
    engine = decide(prepared.state, prepared.compiled)
    progress("building outputs")
    return result_of(prepared, engine)


def result_of(prepared: Prepared, engine: EngineResult, *,
              cta_history: pl.DataFrame | None = None,
              history_is_latest: bool = False) -> RunResult:
    """The run's tables; ``cta_history``: the CTA events of earlier days (with a state), or
    with ``history_is_latest`` only the latest row of each CTA (see ctas.latest_ctas)."""
    rules, as_of, customers = prepared.rules, prepared.as_of, prepared.customers
    final = final_values(engine.state.sort(ROW), prepared.compiled)
    ctas = ctas_of(prepared, engine, final, cta_history, history_is_latest)
    warnings = list(prepared.warnings) + _warnings(engine, final, rules)
    before = prepared.state.group_by(STAGE).len()
    after = final.group_by(STAGE).len()
    input_paths = [customers.path, *(prepared.usage.paths if prepared.usage else [])]
    return RunResult(
        rules=rules,
        as_of=as_of,
        customers=customer_table(customers, final, rules),
        transitions=engine.transitions,
        engine=engine,
        metrics=prepared.metrics,
        stages_before=dict(before.iter_rows()),
        stages_after=dict(after.iter_rows()),
        input_paths=input_paths,
        id_column=customers.external[ID],
        warnings=warnings,
        overrides=prepared.overrides,
        lagging=prepared.lagging,
        final_stages=final.select(ID, STAGE, ENTERED),
        schema=schema_of(prepared.rules, prepared),
        ctas=ctas,
    )


def ctas_of(prepared: Prepared, engine: EngineResult, final: pl.DataFrame,
            cta_history: pl.DataFrame | None, history_is_latest: bool = False) -> CtaResult:
    """The CTAs a run creates and closes (``final``: `final_values` of the engine's state)."""
    # a customer enters its stage by a move (or initial assignment), or by a hand change
    # in the export that the run kept (see state.merge_start)
    entered = pl.concat([
        engine.transitions["customer_id"].cast(pl.String),
        prepared.overrides.filter(pl.col("kept") == "export")["customer_id"].cast(pl.String),
    ]).unique()
    return decide_ctas(final, prepared.compiled, history=cta_history, entered_now=entered,
                       history_is_latest=history_is_latest)


def schema_of(rules: Rules, loaded: Loaded | Prepared) -> dict[str, dict[str, str]]:
    """The exports' columns and their kinds, under the exports' own headers."""
    customers = {
        rules.customer_column(c): kind_of(t).value
        for c, t in loaded.customers.typed.schema.items()
        if c != ROW
    }
    usage = {} if loaded.usage is None else {
        rules.usage_column(c): kind_of(t).value for c, t in loaded.usage.schema.items()
    }
    return {"customers": customers, "usage": usage}


def customer_table(customers: Customers, final: pl.DataFrame, rules: Rules) -> pl.DataFrame:
    """The customers output: the export's columns and values, stages updated, computed after."""
    raw = customers.raw
    computed = [
        PREVIOUS_STAGE,
        DAYS_IN_STAGE,
        EXPECTED_DAYS,
        OVERDUE,
        *rules.derived,
        *[m for m in rules.metrics if m in final.columns],
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


__all__ = [
    "Prepared",
    "RunResult",
    "prepare",
    "prepare_alike",
    "reads_alike",
    "run",
    "run_prepared",
    "customer_table",
    "Kind",
]
