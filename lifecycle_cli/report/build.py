"""Reports: where customers stand, how they moved, how long they stay, and who is late.

A report is built in two steps, each usable from Python::

    history = history_from_state("state", rules, start, end, customers="crm.csv")
    # or, without a state, one run in memory:
    history = history_from_exports(rules, "crm.csv", ["usage.csv"], as_of)
    report = build_report(history)
    report.tables  # name -> Polars DataFrame, for the terminal, HTML, XLSX and CSV

A :class:`History` is what the sources give: the stages at the end of the
period, the moves within it (transitions, and stages changed by hand in the
export), customer attributes (owner, value, name) and CTA records.
:func:`build_report` turns it into tables; renderers only lay them out.

Time in stage is estimated with Kaplan-Meier (`lifecycle_cli.survival`). A
visit is one customer's stay in one stage. Those that ended in the period end
with a move (an event; the move says how many days it lasted); those still
going on at the end are censored at the end date, or at the customer's last
export if it has left the exports. Visits that began before the period are
left-truncated at the period's start. Visits with no known start are skipped,
and counted; the ``visits`` table lists the same visits, one row each
(`lifecycle_cli.day.visits` makes both). Visits that began and ended on one day
(passed through within a run) are no time spent: left out, and counted. A median,
p90 or over_expected needs ``min_exits`` visits that ended (the rules' ``report:
min_exits``).

The funnel follows the rules' main path (`Rules.main_path`) and counts customers;
moves from the path to other stages are outflows. The flows count moves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import (
    BY_HAND_RULE,
    CLOSED,
    ENTERED,
    ID,
    MOVES_SCHEMA,
    OPEN,
    ROW,
    SEEN,
    SEGMENT,
    STAGE,
    VISIT_SCHEMA,
)
from ..ctas.decide import current
from ..day.load import Progress, Tables, UsageSpecs, load, no_progress, unknown_names
from ..day.pipeline import run_day
from ..day.visits import last_moves, visits
from ..engine.builtins import days_in_stage, expected_days, overdue, stuck
from ..engine.builtins import owner as owner_of
from ..errors import DataError, OptionError, Problem
from ..inputs.attributes import join_attributes
from ..inputs.customers import read_customers
from ..rules.model import Rules
from ..rules.scorecard import scorecard_columns
from ..state.store import StateError
from ..state.view import StateView
from .groups import GROUP, attach, check_free, find_column, group_map, group_names
from .groups import NONE as NONE_GROUP
from .groups import order as group_order
from .survival import (
    AT_RISK,
    CENSORED,
    EVENTS,
    SURVIVAL,
    TIME,
    kaplan_meier,
    quantile_days,
    survival_at,
)

NEW = "(new)"  # the from-stage of an initial assignment
BY_HAND = BY_HAND_RULE  # the rule of a stage changed by hand in the export
NO_OWNER = "(no owner)"
DEFAULT_VALUE = "arr"
DEFAULT_OWNER = "csm"
DEFAULT_NAME = "name"

CTA_COLUMNS = ("as_of", "cta_id", "customer_id", "type", "owner", "created_on", "due_on",
               "status", "closed_on")



# -- the sources ------------------------------------------------------------------------------


@dataclass
class History:
    """What a report is made from.

    ``current``: one row per customer at ``end``: ``customer_id`` (text), ``stage``,
    ``stage_entered_at``, ``last_seen`` (the last as-of date whose export listed it).
    ``moves``: every move with ``as_of`` in [``start``, ``end``] (`MOVES_SCHEMA`);
    ``days_in_from_stage`` is how long the visit it ended lasted.
    ``attributes``: ``customer_id`` (text) and the customers export's other columns,
    under the rules' names, and the metrics at ``end`` (from a run in memory, the derived
    values too); None when there are none.
    ``ctas``: the state's CTA records up to ``end`` (see :func:`cta_table`), or None.
    ``before``: each customer's last move before ``start`` (None: none): the rule that
    began the visits going on when the period begins.
    """

    rules: Rules
    start: dt.date
    end: dt.date
    current: pl.DataFrame
    moves: pl.DataFrame
    attributes: pl.DataFrame | None = None
    ctas: pl.DataFrame | None = None
    source: str = ""
    runs: int = 1
    warnings: list[str] = field(default_factory=list)
    before: pl.DataFrame | None = None
    inputs: list[Path] = field(default_factory=list)  # the files read (besides the state)
    # the state's `values` table of ``end`` (every column it kept): what --by may name
    # besides the attributes; None without a state, or when the day kept none
    values: pl.DataFrame | None = None


def _attributes(typed: pl.DataFrame) -> pl.DataFrame:
    """The customers export as the rules see it, keyed by the id as text."""
    return typed.drop(ROW, STAGE, ENTERED, strict=False).with_columns(
        pl.col(ID).cast(pl.String))


def _with_computed(attributes: pl.DataFrame | None, computed: pl.DataFrame | None
                   ) -> pl.DataFrame | None:
    """The attributes and the computed values (``customer_id`` as text, then metrics...):
    a computed value replaces an export column of its name, as in the customers output."""
    if computed is None or computed.width <= 1:
        return attributes
    if attributes is None:
        return computed
    own = [c for c in attributes.columns if c == ID or c not in computed.columns]
    return attributes.select(own).join(computed, on=ID, how="full", coalesce=True,
                                       maintain_order="left_right")


def history_from_state(
    state_dir: str | Path,
    rules: Rules,
    start: dt.date | None = None,
    end: dt.date | None = None,
    *,
    customers: str | Path | None = None,
    encoding: str | None = None,
    progress: Progress = no_progress,
    tables: Tables | None = None,
) -> History:
    """The history a state folder holds from ``start`` to ``end`` (default: all of it).

    The period ends on the state's last as-of date on or before ``end``. ``customers``
    (an export) gives the attributes: owner, value, name; with ``tables``, its sheet and
    attribute tables too.
    """
    if start is not None and end is not None and start > end:
        raise OptionError(f"--from {start} is after --to {end}")
    path = Path(state_dir)
    view = StateView.open(path)
    days = [d for d in view.days if (start is None or d >= start) and (end is None or d <= end)]
    if not days:
        first, latest = view.first, view.latest
        held = f"it holds {first} to {latest}" if first else "it holds no runs"
        raise StateError(Problem(
            f"the state has no run from {start or 'its start'} to {end or 'its end'}; {held}",
            file=str(path), hint="choose --from and --to within the state's dates"))
    # the history begins with the state's first run, whatever --from says
    start, end = max(start or days[0], view.first or days[0]), days[-1]
    progress("reading the state")
    current = view.stages(end)
    if current is None:
        raise StateError(Problem(f"the state has no stage table for {end}", file=str(path)))
    if SEEN not in current.columns:
        current = current.with_columns(pl.lit(end, dtype=pl.Date).alias(SEEN))
    current = current.select("customer_id", "stage", "stage_entered_at", SEEN)
    moves = _state_moves(view, start, end)
    before = last_moves(view.moves(None, start - dt.timedelta(days=1))) \
        if view.first is not None and start > view.first else None
    ctas = view.ctas(end) if rules.cta_rules() else None
    attributes = None
    warnings: list[str] = []
    if customers is not None:
        progress("reading customers")
        tables = tables or Tables()
        unknown = unknown_names(rules, {}, tables)
        if unknown:
            raise OptionError([p for error in unknown for p in error.problems])
        read = read_customers(customers, rules, encoding=encoding, sheet=tables.sheet)
        given = {n: p for n, p in tables.attributes.items() if n in rules.attributes}
        if given:
            read = join_attributes(read, rules, given, encoding=encoding)
        warnings += read.warnings
        attributes = _attributes(read.typed)
        missing = current.join(attributes.select(ID), on=ID, how="anti").height
        if missing:
            warnings.append(
                f"{missing:,} customer(s) of the state are not in {customers}: they have no "
                "owner or value in the report")
    attributes = _with_computed(attributes, view.metrics(end))
    # the score, its band and points, and the customer's segment, as the state kept them
    # (the segment gives the expected days of its customers: see `_customers`)
    scores = rules.scorecard.columns if rules.scorecard is not None else []
    values = view.table("values", end)  # read once: --by may name any of its columns
    if values is not None:
        kept = [c for c in ["customer_id", *scores, SEGMENT] if c in values.columns]
        attributes = _with_computed(attributes, values.select(kept))
    gone = current.filter(pl.col(SEEN) < end).height
    if gone:
        warnings.append(
            f"{gone:,} customer(s) were not in the export of {end} (last seen earlier): they "
            "keep the stage the state holds, and their time in stage stops at their last export")
    return History(rules, start, end, current, moves, attributes, ctas,
                   source=f"state {path}", runs=len(days), warnings=warnings, before=before,
                   values=values)


def _state_moves(view: StateView, start: dt.date, end: dt.date) -> pl.DataFrame:
    """Transitions, and stages changed by hand in the export (overrides the export won;
    a hand edit of the date alone is no move)."""
    return view.moves(start, end)


def history_from_exports(
    rules: Rules,
    customers: str | Path,
    usage: UsageSpecs = (),
    as_of: dt.date | None = None,
    *,
    encoding: str | None = None,
    progress: Progress = no_progress,
    tables: Tables | None = None,
) -> History:
    """One day in memory (nothing written): the period is its as-of date."""
    loaded = load(rules, customers, usage, encoding=encoding, progress=progress, tables=tables)
    result = run_day(rules, loaded, as_of or dt.date.today(), progress=progress)
    day = result.as_of
    current = result.final_stages.select(
        pl.col(ID).cast(pl.String), STAGE, ENTERED, pl.lit(day, dtype=pl.Date).alias(SEEN))
    moves = result.transitions.select(pl.col(c).cast(t) for c, t in MOVES_SCHEMA.items())
    ctas = result.records()["ctas"] if rules.cta_rules() else None  # the CTAs this day creates
    # the day's segment too (the rules' `segments:` choose it; --by segment reads it)
    segment = [SEGMENT] if SEGMENT in result.final.columns else []
    computed = result.final.select(pl.col(ID).cast(pl.String), *dict.fromkeys(
        [*rules.metrics, *rules.derived, *scorecard_columns(rules), *segment]))
    attributes = _with_computed(_attributes(loaded.customers.typed), computed)
    return History(rules, day, day, current, moves, attributes,
                   ctas, source=f"a run on {customers}", warnings=list(result.warnings),
                   inputs=loaded.paths)


# -- the report -------------------------------------------------------------------------------


@dataclass
class Report:
    """A report's tables (Polars DataFrames) and what they were made from."""

    title: str
    source: str
    start: dt.date
    end: dt.date
    runs: int
    customers: int
    stages: list[str]  # in the lifecycle's order (then stages the rules no longer name)
    value_column: str | None
    owner_column: str | None
    name_column: str | None
    stuck_factor: float
    distribution: pl.DataFrame
    flows: pl.DataFrame
    flow_matrix: pl.DataFrame
    funnel: pl.DataFrame
    funnel_outflows: pl.DataFrame
    time_in_stage: pl.DataFrame
    survival: pl.DataFrame
    overdue: pl.DataFrame
    overdue_customers: pl.DataFrame
    ctas: pl.DataFrame | None  # None: the rules have no CTAs
    skipped_visits: int
    main_path: list[str] = field(default_factory=list)  # the funnel's stages, in order
    min_exits: int = 10  # fewer visits that ended: no median, p90 or over_expected
    passed_through: int = 0  # visits that began and ended on one day, left out of the times
    warnings: list[str] = field(default_factory=list)
    # one row per visit in progress at some time in the period (`VISIT_SCHEMA`)
    visits: pl.DataFrame | None = None
    by: str | None = None  # --by: the customer column every table is split by (first column)
    groups: list[str] = field(default_factory=list)  # its values, in the tables' order

    @property
    def notes(self) -> dict[str, str]:
        """What the tables count and leave out, in words: under the tables on the terminal
        and the page, in ``about`` in the workbook and the CSV files."""
        return {
            "funnel": "The funnel counts customers: each customer once per stage and column, "
                      "however often it moved. The flows and the flow matrix count moves: a "
                      "customer who moved twice counts twice.",
            "main_path": "The funnel follows the main path "
                         f"{' → '.join(self.main_path) or '(none)'}; moves from it to other "
                         "stages are outflows (funnel_outflows), not conversion.",
            "passed_through": "Time in stage leaves out the visits that began and ended on "
                              "the same day (a first stage or a stage passed through within "
                              "one run: no time was spent in it); passed_through counts them.",
            "min_exits": f"Median, p90 and over_expected need at least {self.min_exits} "
                         "visits that ended in the period (left); with fewer they show — "
                         "and the note says why.",
        } | ({"by": f"Split by {self.by}: each customer counts in its group on {self.end} "
                    f"(the value of {self.by} then; {NONE_GROUP} when it has none), with "
                    "all its moves and visits in the period. Shares are within the group."}
             if self.by else {})

    @property
    def about(self) -> pl.DataFrame:
        facts = {
            "report": self.title,
            "source": self.source,
            "period_start": self.start.isoformat(),
            "period_end": self.end.isoformat(),
            "runs": str(self.runs),
            "customers": str(self.customers),
            "value_column": self.value_column or "",
            "owner_column": self.owner_column or "",
            "stuck_factor": f"{self.stuck_factor:g}",
            "visits_skipped": str(self.skipped_visits),
            "visits_passed_through": str(self.passed_through),
            "main_path": ", ".join(self.main_path),
            "min_exits": str(self.min_exits),
        } | ({"by": self.by or "", "groups": ", ".join(self.groups)} if self.by else {}) | {
            f"note_{key}": text for key, text in self.notes.items()}
        return pl.DataFrame({"item": list(facts), "value": list(facts.values())})

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table by name, in reading order (a sheet or a CSV file each)."""
        tables = {
            "about": self.about,
            "distribution": self.distribution,
            "flows": self.flows,
            "flow_matrix": self.flow_matrix,
            "funnel": self.funnel,
            "funnel_outflows": self.funnel_outflows,
            "time_in_stage": self.time_in_stage,
            "survival": self.survival,
            "overdue": self.overdue,
            "overdue_customers": self.overdue_customers,
        }
        if self.visits is not None:
            tables["visits"] = self.visits
        if self.ctas is not None:
            tables["ctas"] = self.ctas
        return tables


def _column(attributes: pl.DataFrame | None, rules: Rules, wanted: str | None, default: str | None,
            option: str) -> str | None:
    """The attribute column an option names (by the rules' name or the export's header),
    or its default when that column exists."""
    if attributes is None:
        if wanted is not None:
            raise OptionError(Problem(f"{option} {wanted} needs the customers export",
                                      hint="give --customers PATH"))
        return None
    columns = [c for c in attributes.columns if c != ID]
    if wanted is None:
        return default if default in columns else None
    lacking = "the customers export has no such column"
    if option == "--value" and any(m in columns for m in rules.metrics):
        lacking += ", and no metric has this name"
    return find_column(wanted, columns, headers={rules.customer_column(c): c for c in columns},
                       option=option, lacking=lacking)


def _stuck_factor(rules: Rules, given: float | None) -> float:
    factor = float(given if given is not None else rules.compliance.stuck_factor)
    if not factor >= 1:
        raise OptionError(f"--stuck-factor takes a number of at least 1, not {factor:g}")
    return factor


def _order(column: str, stages: list[str], first: str | None = None) -> pl.Expr:
    """A sort key that puts stages in the lifecycle's order (``first`` before them)."""
    keys = {s: i + 1 for i, s in enumerate(stages)}
    if first is not None:
        keys[first] = 0
    return pl.col(column).replace_strict(keys, default=len(keys) + 1, return_dtype=pl.Int64)


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return pl.when(whole > 0).then(part / whole).otherwise(None).round(4)


def _expected_for(rules: Rules, by: str | None, value: str | None) -> dict[str, int | None]:
    """The expected days of each stage for the customers whose ``by`` column holds
    ``value`` (``by`` None: every customer): the time-in-stage tables and the overdue
    table of a group use these: a segment's own (`segments:`) when split by ``segment``,
    else the stages' own."""
    return rules.expected_days_in(value if by == SEGMENT and rules.segments else None)


def _keys(groups: list[str] | None) -> list[str]:
    """The group column first when the report is split, then nothing."""
    return [] if groups is None else [GROUP]


def _skeleton(groups: list[str] | None, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (one row per stage) once per group, the group first."""
    if groups is None:
        return frame
    return pl.DataFrame({GROUP: groups}, schema={GROUP: pl.String}).join(
        frame, how="cross", maintain_order="left_right")


def _group_sort(groups: list[str] | None) -> list[pl.Expr]:
    return [] if groups is None else [group_order(groups)]


# the columns of the report's tables besides the stages' names: a --by column of one of
# these names would clash
_REPORT_COLUMNS = {
    ID, "name", STAGE, "owner", ENTERED, SEEN, "days_in_stage", "expected_days",
    "times_expected", "stuck", "customers", "share", "overdue", "overdue_share", "most_days",
    "from_stage", "to_stage", "moves", "by_hand", "next_stage", "to_next", "conversion",
    "elsewhere_on_path", "outflow", "still_in", "visits", "left", "median_days", "p90_days",
    "over_expected", "passed_through", "skipped", "note", "total", TIME, AT_RISK, EVENTS,
    CENSORED, SURVIVAL, "type", "created", "closed", "open", "past_due", "item", "value",
    *VISIT_SCHEMA,
}


def build_report(
    history: History,
    *,
    value: str | None = None,
    owner: str | None = None,
    name: str | None = None,
    stuck_factor: float | None = None,
    min_exits: int | None = None,
    by: str | None = None,
) -> Report:
    """Every table of the report for ``history``.

    ``value``: a numeric customer column to sum per stage (default ``arr`` when the
    export has it); ``owner``: the column naming each customer's owner (default: the
    rules' `Rules.owner_column`, else ``csm``, when present);
    ``name``: a customer name column for the lists (default ``name``). Stuck means
    more than ``stuck_factor`` times the stage's expected days in it (default: the
    rules' ``compliance.stuck_factor``, 2 unless written). Time in stage needs
    ``min_exits`` visits that ended for a median (default: the rules'
    ``report.min_exits``, 10 unless written); the funnel follows `Rules.main_path`.
    ``by``: a customer column (an export column, a metric, a derived value) to split every
    table by: the tables get it as their first column, one group per value (see
    `lifecycle_cli.report.groups`); a customer's group is its value at the end date.
    """
    rules, attributes = history.rules, history.attributes
    value_col = _column(attributes, rules, value, DEFAULT_VALUE, "--value")
    owner_col = _column(attributes, rules, owner, rules.owner_column or DEFAULT_OWNER,
                        "--owner-column")
    name_col = _column(attributes, rules, name, DEFAULT_NAME, "--name-column")
    factor = _stuck_factor(rules, stuck_factor)
    warnings = list(history.warnings)

    seen = set(history.current["stage"].drop_nulls()) | set(history.moves["from_stage"]
                                                            .drop_nulls())
    seen |= set(history.moves["to_stage"].drop_nulls())
    unknown = sorted(seen - set(rules.stage_names))
    if unknown:
        warnings.append(f"the history holds stages the rules don't name: {', '.join(unknown)}; "
                        "they are shown after the rules' stages")
    stages = [*rules.stage_names, *unknown]
    no_expectation: dict[str, int | None] = {s: None for s in unknown}
    expected = _expected_for(rules, None, None) | no_expectation

    by_col, groups, mapping = None, None, None
    if by is not None:
        by_col, mapping, groups = _split(history, by, stages, value_col)
        history = dataclasses.replace(history, current=attach(history.current, mapping),
                                      moves=attach(history.moves, mapping))
    expected_of: dict[str | None, dict[str, int | None]] = {None: expected}
    if groups is not None:
        expected_of = {g: _expected_for(rules, by_col, g) | no_expectation for g in groups}

    customers = _customers(history, attributes, value_col, owner_col, name_col, factor)
    stays, skipped, passed = _visits(history, mapping)
    min_exits = rules.report.min_exits if min_exits is None else min_exits
    if min_exits < 1:
        raise OptionError(f"min_exits takes a whole number of at least 1, not {min_exits}")
    time_in_stage, curve = _time_in_stage(stays, skipped, passed, stages, expected_of,
                                          min_exits, groups)
    main_path = rules.main_path
    if len(main_path) < 2:
        warnings.append("the funnel needs a main path of at least two stages, and the stages "
                        f"before the first risk or terminal stage are {len(main_path)}: set "
                        "report: {main_path: [...]} in the rules")
        main_path = []
    funnel, outflows = _funnel(history, main_path, stages, groups)
    flows = _flows(history.moves, stages, groups)
    ctas = cta_table(history.ctas, history.start, history.end, groups=mapping,
                     order=groups)
    all_visits = visits(history.moves, history.current, history.end, start=history.start,
                        before=history.before)
    if mapping is not None:
        all_visits = attach(all_visits, mapping)
    title = rules.name or "lifecycle"
    report = Report(
        title=title,
        source=history.source,
        start=history.start,
        end=history.end,
        runs=history.runs,
        customers=customers.height,
        stages=stages,
        value_column=value_col,
        owner_column=owner_col,
        name_column=name_col,
        stuck_factor=factor,
        distribution=_distribution(customers, stages, value_col, groups),
        flows=flows,
        flow_matrix=_flow_matrix(flows, stages, groups),
        funnel=funnel,
        funnel_outflows=outflows,
        time_in_stage=time_in_stage,
        survival=curve,
        overdue=_overdue(customers, stages, expected_of, value_col, groups),
        overdue_customers=_overdue_customers(customers, stages, value_col, name_col, groups),
        ctas=ctas,
        skipped_visits=int(skipped["skipped"].sum()) if skipped.height else 0,
        main_path=main_path,
        min_exits=min_exits,
        passed_through=int(passed["passed_through"].sum()) if passed.height else 0,
        warnings=warnings,
        visits=all_visits,
    )
    if by_col is None or groups is None:
        return report
    named = {GROUP: by_col}
    return dataclasses.replace(
        report, by=by_col, groups=groups,
        **{f.name: getattr(report, f.name).rename(named) for f in dataclasses.fields(report)
           if isinstance(getattr(report, f.name), pl.DataFrame)
           and GROUP in getattr(report, f.name).columns})


def _split(history: History, by: str, stages: list[str], value: str | None
           ) -> tuple[str, pl.DataFrame, list[str]]:
    """The column ``--by`` names, each customer's group (`group_map`) and the groups."""
    attributes, rules = history.attributes, history.rules
    if history.values is not None:  # what the state kept (a segment, a value read later)
        attributes = _with_computed(attributes, history.values)
    if attributes is None:
        raise OptionError(Problem(
            f"--by {by} needs the customers' columns",
            hint="give --customers PATH (with --state: the export whose columns split the "
                 "report)"))
    columns = attributes.columns
    column = find_column(by, columns, headers={rules.customer_column(c): c for c in columns},
                         where="the customers export, the metrics and the derived values")
    values = history.current.select(ID).join(
        attributes.select(ID, pl.col(column).alias("__value")), on=ID, how="left",
        maintain_order="left")
    mapping = group_map(values, "__value")
    taken = _REPORT_COLUMNS | set(stages)
    if value is not None:
        taken |= {value, f"{value}_share", f"{value}_overdue"}
    groups = group_names(mapping, column, source=attributes, avoid=taken,
                         first=rules.segment_names if column == SEGMENT else ())
    check_free(column, taken, "the report's tables")
    return column, mapping, groups


def _customers(history: History, attributes: pl.DataFrame | None, value: str | None,
               owner: str | None, name: str | None, factor: float) -> pl.DataFrame:
    """The customers at the end: stage, days in it, overdue, stuck, owner, value, name (and
    their group, when the report is split)."""
    current = history.current
    extra = [c for c in dict.fromkeys([name, owner, value]) if c is not None]
    if (attributes is not None and SEGMENT in attributes.columns
            and SEGMENT not in current.columns):
        extra = list(dict.fromkeys([*extra, SEGMENT]))  # a segment's expected days
    if attributes is not None and extra:
        current = current.join(attributes.select(ID, *extra), on=ID, how="left",
                               maintain_order="left")
    if value is not None and not current.schema[value].is_numeric():
        raise DataError(Problem(
            f"the value column '{value}' holds text, not numbers", column=value,
            hint="give --value a numeric column such as arr, or fix the values in the export"))
    group = [GROUP] if GROUP in current.columns else []
    return current.with_columns(
        days_in_stage(history.end).alias("days_in_stage"),
        # the customer's segment's (none known: the stages' own)
        expected_days(history.rules, segment=pl.col(SEGMENT) if SEGMENT in current.columns
                      else pl.lit(None, dtype=pl.String)).alias("expected_days"),
        # the owner rule of CTAs: the rules' default_owner where the column is empty
        (owner_of(owner, history.rules.default_owner) if attributes is not None
         else pl.lit(None, dtype=pl.String)).fill_null(NO_OWNER).alias("owner"),
        (pl.col(value) if value else pl.lit(None, dtype=pl.Float64)).alias("value"),
        (pl.col(name).cast(pl.String) if name else pl.lit(None, dtype=pl.String)).alias("name"),
    ).with_columns(
        overdue().alias("overdue"),
        stuck(factor).alias("stuck"),
    ).select(*group, ID, "name", STAGE, "owner", "value", ENTERED, SEEN, "days_in_stage",
             "expected_days", "overdue", "stuck")


def _distribution(customers: pl.DataFrame, stages: list[str], value: str | None,
                  groups: list[str] | None = None) -> pl.DataFrame:
    """Customers (and value) per stage now, with shares, overdue and stuck counts (per
    group, the shares within the group)."""
    keys = [*_keys(groups), STAGE]
    counts = customers.group_by(*keys).agg(
        pl.len().alias("customers"),
        pl.col("value").sum().alias("value"),
        pl.col("overdue").sum().alias("overdue"),
        pl.col("stuck").sum().alias("stuck"),
    )
    table = _skeleton(groups, pl.DataFrame({STAGE: stages})).join(
        counts, on=keys, how="left", maintain_order="left")
    table = table.with_columns(pl.col("customers", "overdue", "stuck").fill_null(0)
                               .cast(pl.Int64))

    def whole(expr: pl.Expr) -> pl.Expr:
        return expr.sum() if groups is None else expr.sum().over(GROUP)

    table = table.with_columns(_share(pl.col("customers"), whole(pl.col("customers")))
                               .alias("share"))
    columns = [*_keys(groups), STAGE, "customers", "share"]
    if value is not None:
        table = table.with_columns(
            pl.col("value").fill_null(0).alias(value),
            _share(pl.col("value").fill_null(0), whole(pl.col("value"))).alias(f"{value}_share"))
        columns += [value, f"{value}_share"]
    return table.select(*columns, "overdue", "stuck")


def _flows(moves: pl.DataFrame, stages: list[str], groups: list[str] | None = None
           ) -> pl.DataFrame:
    """Moves in the period from stage to stage; initial assignments come from ``(new)``."""
    return (
        moves.with_columns(pl.col("from_stage").fill_null(NEW))
        .group_by(*_keys(groups), "from_stage", "to_stage")
        .agg(
            pl.len().cast(pl.Int64).alias("moves"),
            (pl.col("rule_id") == BY_HAND).sum().cast(pl.Int64).alias("by_hand"),
            pl.col(ID).n_unique().cast(pl.Int64).alias("customers"),
        )
        .sort(*_group_sort(groups), _order("from_stage", stages, NEW),
              _order("to_stage", stages), "from_stage", "to_stage")
    )


def _flow_matrix(flows: pl.DataFrame, stages: list[str], groups: list[str] | None = None
                 ) -> pl.DataFrame:
    """The flows as a from (rows) x to (columns) matrix of moves, with the stages in order."""
    rows = [NEW, *stages]
    keys = [*_keys(groups), "from_stage"]
    cells = [
        pl.col("moves").filter(pl.col("to_stage") == to).sum().cast(pl.Int64).alias(to)
        for to in stages
    ]
    counts = flows.group_by(*keys).agg(*cells) if flows.height else None
    table = _skeleton(groups, pl.DataFrame({"from_stage": rows}))
    if counts is not None:
        table = table.join(counts, on=keys, how="left", maintain_order="left")
    else:
        table = table.with_columns(pl.lit(None, dtype=pl.Int64).alias(s) for s in stages)
    table = table.with_columns(pl.col(stages).fill_null(0))
    return table.with_columns(pl.sum_horizontal(stages).alias("total"))


def _visits(history: History, groups: pl.DataFrame | None = None
            ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The visits in progress at some time in the period, for Kaplan-Meier; the number
    skipped per stage (no known start, or a start after their end); and the number that
    passed through per stage (began and ended on one day). With ``groups`` (a `group_map`),
    each of them per group too.

    Columns of the visits: ``customer_id``, ``stage``, ``entered``, ``days`` (how long it
    lasted, or has lasted at its censoring), ``left`` (true: it ended with a move),
    ``observed_from`` (the age in days at which the period began to see it).

    A visit that ended on the day it began is no time spent: a customer given its first
    stage and moved on in the same run, or moved through a stage hop after hop. Counted
    as visits that lasted 0 days, they would put the median of a first stage at 0.
    """
    all_visits = visits(history.moves, history.current, history.end).with_columns(
        pl.col("exited").is_not_null().alias("left"),
        (pl.lit(history.start, dtype=pl.Date) - pl.col("entered")).dt.total_days()
        .cast(pl.Int64).clip(lower_bound=0).alias("observed_from"),
    )
    keys = [STAGE]
    if groups is not None:
        all_visits = attach(all_visits, groups)
        keys = [GROUP, STAGE]
    usable = pl.col("days").is_not_null() & (pl.col("days") >= 0)
    through = usable & pl.col("left") & (pl.col("days") == 0)
    skipped = all_visits.filter(~usable).group_by(*keys).agg(pl.len().alias("skipped"))
    passed = all_visits.filter(through).group_by(*keys).agg(pl.len().alias("passed_through"))
    # a visit the period never saw (its customer's last export came before the period)
    stays = all_visits.filter(usable & ~through & (pl.col("observed_from") <= pl.col("days")))
    return (stays.select(*keys[:-1], ID, STAGE, "entered", "days", "left", "observed_from"),
            skipped, passed)


def _time_in_stage(visits: pl.DataFrame, skipped: pl.DataFrame, passed: pl.DataFrame,
                   stages: list[str], expected: dict[str | None, dict[str, int | None]],
                   min_exits: int, groups: list[str] | None = None,
                   ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Median and p90 days in each stage (Kaplan-Meier) against its expected days, beside
    the visits and exits they rest on, and the survival curves behind them. ``expected``:
    the expected days of each group's stages (the key None without groups).

    With fewer than ``min_exits`` visits that ended, median, p90 and over_expected are
    NULL (too few to say), and ``note`` says why a value is missing.
    """
    gk = _keys(groups)
    keys = [*gk, STAGE]
    curve = kaplan_meier(visits, by=keys, duration="days", event="left", entry="observed_from")
    curve = curve.sort(*_group_sort(groups), _order(STAGE, stages), TIME).select(
        *keys, TIME, AT_RISK, EVENTS, CENSORED, pl.col(SURVIVAL).round(6))
    counts = visits.group_by(*keys).agg(
        pl.len().cast(pl.Int64).alias("visits"),
        pl.col("left").sum().cast(pl.Int64).alias("left"),
        (~pl.col("left")).sum().cast(pl.Int64).alias("still_in"),
    )
    schema = {STAGE: pl.String, "expected_days": pl.Int64}
    if groups is None:
        table = pl.DataFrame({
            STAGE: stages, "expected_days": [expected[None].get(s) for s in stages]},
            schema=schema)
    else:
        table = pl.DataFrame({
            GROUP: [g for g in groups for _ in stages],
            STAGE: [s for _ in groups for s in stages],
            "expected_days": [expected[g].get(s) for g in groups for s in stages]},
            schema={GROUP: pl.String, **schema})
    table = survival_at(curve, table, keys, "expected_days", "over_expected")
    for part in (counts, passed, skipped, quantile_days(curve, keys, 0.5, "median_days"),
                 quantile_days(curve, keys, 0.1, "p90_days")):
        table = table.join(part, on=keys, how="left", maintain_order="left")
    table = table.with_columns(
        pl.col("visits", "left", "still_in", "passed_through", "skipped").fill_null(0)
        .cast(pl.Int64))
    enough = pl.col("left") >= min_exits
    note = (
        pl.when(pl.col("visits") == 0)
        .then(pl.when(pl.col("passed_through") > 0).then(pl.lit("only passed through"))
              .otherwise(pl.lit("no visits")))
        .when(pl.col("left") == 0).then(pl.lit("nobody left yet"))
        .when(~enough).then(pl.format("too few exits ({} < {})", "left", pl.lit(min_exits)))
        .when(pl.col("median_days").is_null()).then(pl.lit("median not reached"))
        .when(pl.col("p90_days").is_null()).then(pl.lit("p90 not reached"))
        .otherwise(pl.lit(""))
    )
    return table.select(
        *keys,
        "expected_days",
        "visits",
        "left",
        *(pl.when(enough).then(pl.col(c).cast(pl.Int64)).alias(c)
          for c in ("median_days", "p90_days")),
        pl.when(enough).then(pl.col("over_expected").round(4)).alias("over_expected"),
        "still_in",
        "passed_through",
        "skipped",
        note.alias("note"),
    ), curve


def _funnel(history: History, path: list[str], stages: list[str],
            groups: list[str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Conversion along the main path in the period: of the customers in a stage of the
    path at any time in it, how many moved straight on to the next stage of the path; and
    the outflows, the customers who moved from a stage of the path to a stage off it.
    With ``groups``, per group (the history's moves and customers carry the group).

    Everything counts customers (each once per stage and column), not moves.
    """
    gk = _keys(groups)
    keys = [*gk, STAGE]
    steps = pl.DataFrame({STAGE: path, "next_stage": [*path[1:], None][:len(path)]},
                         schema={STAGE: pl.String, "next_stage": pl.String})
    frame = _skeleton(groups, steps)
    seen = pl.col(SEEN) >= history.start
    # customers whose visit the period saw, with a known start or not
    was_in = pl.concat([
        history.moves.filter(pl.col("from_stage").is_not_null())
        .select(*gk, ID, pl.col("from_stage").alias(STAGE)),
        history.current.filter(seen).select(*gk, ID, STAGE),
    ]).group_by(*keys).agg(pl.col(ID).n_unique().cast(pl.Int64).alias("customers"))
    moved = history.moves.filter(pl.col("from_stage").is_in(path))
    onward = moved.join(steps, left_on=["from_stage", "to_stage"],
                        right_on=[STAGE, "next_stage"], how="semi")
    off_path = ~pl.col("to_stage").is_in(path)

    def leaving(frame_: pl.DataFrame, name: str) -> pl.DataFrame:
        return frame_.group_by(*gk, pl.col("from_stage").alias(STAGE)).agg(
            pl.col(ID).n_unique().cast(pl.Int64).alias(name))

    to_next = leaving(onward, "to_next")
    on_path = leaving(moved.filter(~off_path).join(
        onward, on=[ID, "from_stage", "to_stage"], how="anti"), "elsewhere_on_path")
    outflow = leaving(moved.filter(off_path), "outflow")
    still = history.current.filter(seen).group_by(*keys).agg(
        pl.len().cast(pl.Int64).alias("still_in"))
    for part in (was_in, to_next, on_path, outflow, still):
        frame = frame.join(part, on=keys, how="left", maintain_order="left")
    last = pl.col("next_stage").is_null()
    frame = frame.with_columns(
        pl.col("customers", "to_next", "elsewhere_on_path", "outflow", "still_in")
        .fill_null(0)
    ).with_columns(pl.when(~last).then(pl.col("to_next")).alias("to_next"))
    funnel = frame.select(*keys, "next_stage", "customers", "to_next",
                          _share(pl.col("to_next"), pl.col("customers")).alias("conversion"),
                          "elsewhere_on_path", "outflow", "still_in")
    outflows = (
        moved.filter(off_path)
        .group_by(*gk, "from_stage", "to_stage")
        .agg(pl.col(ID).n_unique().cast(pl.Int64).alias("customers"))
        .join(frame.select(*gk, pl.col(STAGE).alias("from_stage"),
                           pl.col("customers").alias("in_stage")), on=[*gk, "from_stage"])
        .sort(*_group_sort(groups), _order("from_stage", path), _order("to_stage", stages),
              "to_stage")
        .select(*gk, "from_stage", "to_stage", "customers",
                _share(pl.col("customers"), pl.col("in_stage")).alias("share"))
    )
    return funnel, outflows


def _overdue(customers: pl.DataFrame, stages: list[str],
             expected: dict[str | None, dict[str, int | None]], value: str | None,
             groups: list[str] | None = None) -> pl.DataFrame:
    """Per stage with expected days and owner: customers, overdue, stuck (and their value);
    per group too, with the group's stages that have expected days."""
    aggs = [
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col("overdue").sum().cast(pl.Int64).alias("overdue"),
        pl.col("stuck").sum().cast(pl.Int64).alias("stuck"),
        pl.col("days_in_stage").filter(pl.col("overdue")).max().alias("most_days"),
    ]
    if value is not None:
        aggs.append(pl.col("value").filter(pl.col("overdue")).sum().alias(f"{value}_overdue"))
    if groups is None:
        timed_stages = [s for s in stages if expected[None].get(s) is not None]
        timed = customers.filter(pl.col(STAGE).is_in(timed_stages))
    else:
        pairs = [(g, s) for g in groups for s in stages if expected[g].get(s) is not None]
        timed = customers.join(
            pl.DataFrame({GROUP: [g for g, _ in pairs], STAGE: [s for _, s in pairs]},
                         schema={GROUP: pl.String, STAGE: pl.String}),
            on=[GROUP, STAGE], how="semi")
    gk = _keys(groups)
    return (
        timed
        .group_by(*gk, STAGE, "owner")
        .agg(*aggs)
        .with_columns(_share(pl.col("overdue"), pl.col("customers")).alias("overdue_share"))
        .sort(*_group_sort(groups), _order(STAGE, stages), "owner")
        .select(*gk, STAGE, "owner", "customers", "overdue", "overdue_share", "stuck",
                "most_days", *([f"{value}_overdue"] if value else []))
    )


def _overdue_customers(customers: pl.DataFrame, stages: list[str], value: str | None,
                       name: str | None, groups: list[str] | None = None) -> pl.DataFrame:
    """Every overdue customer, the stuck first, then the longest overdue (by group first,
    when the report is split)."""
    gk = _keys(groups)
    columns = [*gk, ID, *(["name"] if name else []), STAGE, "owner",
               *(["value"] if value else []),
               ENTERED, "days_in_stage", "expected_days",
               (pl.col("days_in_stage") / pl.col("expected_days")).round(2)
               .alias("times_expected"), "stuck"]
    sort = [*_group_sort(groups), _order(STAGE, stages), pl.col("stuck"), "days_in_stage", ID]
    table = customers.filter(pl.col("overdue")).sort(
        sort, descending=[*(False for _ in gk), False, True, True, False])
    table = table.select(columns)
    return table.rename({"value": value}) if value else table


def cta_table(ctas: pl.DataFrame | None, start: dt.date, end: dt.date, *,
              groups: pl.DataFrame | None = None, order: list[str] | None = None
              ) -> pl.DataFrame | None:
    """CTAs created, closed and open, by type and owner.

    ``ctas`` holds the state's CTA records: a row per CTA event and day (``as_of``,
    ``cta_id``, ``type``, ``owner``, ``created_on``, ``due_on``, ``status`` open or
    closed, ``closed_on``, ...); the latest row of a CTA up to ``end`` is its status.
    Created and closed count those in [``start``, ``end``]; open those open at ``end``,
    and past_due the open ones whose due date is before ``end``. None without records.
    ``groups`` (a `lifecycle_cli.report.groups.group_map`, its groups in ``order``): by the
    CTA's customer's group first.
    """
    if ctas is None:
        return None
    if ctas.height and (missing := [c for c in CTA_COLUMNS if c not in ctas.columns]):
        raise DataError(f"the CTA records lack the column(s) {', '.join(missing)}")
    schema = {"type": pl.String, "owner": pl.String, "created": pl.Int64, "closed": pl.Int64,
              "open": pl.Int64, "past_due": pl.Int64}
    if groups is not None:
        schema = {GROUP: pl.String, **schema}
    if ctas.height == 0:
        return pl.DataFrame(schema=schema)
    first, last = pl.lit(start, dtype=pl.Date), pl.lit(end, dtype=pl.Date)
    latest = current(ctas.filter(pl.col("as_of") <= last))
    gk = []
    if groups is not None:
        latest, gk = attach(latest, groups), [GROUP]
    is_open = pl.col("status") == OPEN
    return (
        latest.with_columns(pl.col("owner").cast(pl.String).fill_null(NO_OWNER),
                            pl.col("type").cast(pl.String).fill_null(""))
        .group_by(*gk, "type", "owner")
        .agg(
            pl.col("created_on").is_between(first, last).sum().alias("created"),
            ((pl.col("status") == CLOSED) & pl.col("closed_on").is_between(first, last))
            .sum().alias("closed"),
            is_open.sum().alias("open"),
            (is_open & (pl.col("due_on") < last)).sum().alias("past_due"),
        )
        .sort(*([group_order(order)] if groups is not None and order else []), "type", "owner")
        .select(pl.col(c).cast(t) for c, t in schema.items())
    )
