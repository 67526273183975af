"""The rules file as typed models: every section and key, with its default.

Unknown keys are refused (with "did you mean"); the checks across sections
are in `lifecycle_cli.rules.checks`, loading and error locations in
`lifecycle_cli.rules.load`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Literal

from pydantic import BaseModel, Field, SerializeAsAny, field_validator
from pydantic_core import PydanticCustomError

from ..ctas.triggers import CTABase, model_for, validate_cta_rules
from ..errors import Problem
from ..expressions import ExpressionError, parse, previous_names
from ..metrics.aggregations import AGGREGATIONS
from ..models import RulesModel, condition_text
from ..suggest import did_you_mean, or_list
from .scorecard import Band, Linear, Measure, Scorecard, Threshold
from .yamlsource import YamlDocument, format_path


class Stage(RulesModel):
    name: str = Field(min_length=1)
    expected_days: int | None = Field(default=None, ge=0)
    description: str | None = None
    terminal: bool = False


class ColumnMap(RulesModel):
    customers: dict[str, str] = Field(default_factory=dict)
    usage: dict[str, str] = Field(default_factory=dict)
    # the outcomes file of `lifecycle backtest`: customer_id, outcome, date
    outcomes: dict[str, str] = Field(default_factory=dict)


# -- the tables beside the customers export: usage sources, lookups, attribute tables ------

USAGE = "usage"  # the source of a plain `--usage PATH`, and of a metric without `source`
# names of sources, lookups and attribute tables: they are written NAME=PATH on the command line
TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_-]*$"


class Layout(RulesModel):
    """Where a table sits in its file: the sheet of a workbook, the row of its header."""

    sheet: str | None = Field(default=None, min_length=1)
    header_row: int | None = Field(default=None, ge=1)


class CustomersFile(Layout):
    """``customers:``: the customers export's sheet and header row (`--sheet` wins)."""


class Via(RulesModel):
    """``customer_id: {via: LOOKUP}``: a source's rows reach their customer through a lookup."""

    via: str = Field(min_length=1)


class Source(Layout):
    """A named usage source (``sources:``): its own column mapping, and maybe a lookup."""

    columns: dict[str, str] = Field(default_factory=dict)
    customer_id: Via | None = None
    description: str | None = None


class Lookup(Layout):
    """A table that maps a key found in usage rows to the customer (``lookups:``)."""

    key: str = Field(min_length=1)  # the key's column, in the lookup file and in the rows
    customer_id: str = Field(default="customer_id", min_length=1)  # its customer id column
    description: str | None = None


Winner = Literal["customers", "attributes"]


class AttributeTable(Layout):
    """A per-customer table joined by id into the customers the rules see (``attributes:``)."""

    columns: dict[str, str] = Field(default_factory=dict)
    # which side keeps a column that both this table and the customers export have
    wins: Winner | dict[str, Winner] | None = None
    description: str | None = None

    @field_validator("wins", mode="before")
    @classmethod
    def _wins(cls, value: Any) -> Any:
        # one message for both forms, rather than one per member of the union
        sides = ("customers", "attributes")
        if value is None or value in sides:
            return value
        if isinstance(value, dict) and all(isinstance(k, str) and v in sides
                                           for k, v in value.items()):
            return value
        bad = next((v for v in value.values() if v not in sides), value) if isinstance(
            value, dict) else value
        likely = did_you_mean(str(bad), sides)
        raise ValueError(
            f"'{bad}' is not a side: `wins` is 'customers' or 'attributes' (for every column "
            "both tables have), or a mapping column -> 'customers' or 'attributes'"
            + (f" ({likely})" if likely else ""))

    def winner(self, column: str) -> Winner | None:
        """Who keeps ``column`` when the customers export has it too (None: nobody said)."""
        if isinstance(self.wins, dict):
            return self.wins.get(column)
        return self.wins


class Metric(RulesModel):
    agg: str  # a registered aggregation: lifecycle_cli.metrics.aggregations
    source: str | None = None  # a name in `sources:`; none: the source `usage`
    column: str | None = None
    where: str | None = None
    window_days: int | None = Field(default=None, ge=1)
    default: bool | int | float | str | None = None
    description: str | None = None

    @field_validator("agg", mode="before")
    @classmethod
    def _registered(cls, value: Any) -> Any:
        # the registry is read when validating, so an aggregation registered later counts;
        # the error is the one a Literal of the registered names would give
        if isinstance(value, str) and value in AGGREGATIONS:
            return value
        raise PydanticCustomError("literal_error", "Input should be {expected}",
                                  {"expected": or_list(list(AGGREGATIONS))})


class Transition(RulesModel):
    id: str = Field(min_length=1)
    from_: str | list[str] = Field(alias="from")
    to: str
    when: str
    priority: int = 0
    description: str | None = None

    _when = field_validator("when", mode="before")(condition_text)

    @property
    def from_stages(self) -> list[str]:
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)


class Task(RulesModel):
    task: str
    due_days: int = Field(default=0, ge=0)
    business_days: bool | None = None  # None: the CTA rule's, else the rules'
    owner: str | None = None
    description: str | None = None


class Segment(RulesModel):
    """A group of customers (``segments:``) with its own lifecycle: named by a condition
    (the first segment whose `when` holds, in file order; one without `when` takes the
    rest), it may change stages' expected days and add or replace transition and CTA rules
    (a rule with a base rule's id replaces it for the segment). See docs/segments.md."""

    name: str = Field(min_length=1)
    when: str | None = None  # None: every customer no segment above took
    description: str | None = None
    expected_days: dict[str, int | None] = Field(default_factory=dict)  # stage -> days
    transitions: list[Transition] = Field(default_factory=list)
    ctas: list[SerializeAsAny[CTABase]] = Field(default_factory=list)

    _when = field_validator("when", mode="before")(condition_text)

    @field_validator("expected_days")
    @classmethod
    def _days(cls, value: dict[str, int | None]) -> dict[str, int | None]:
        bad = next((s for s, d in value.items() if d is not None and d < 0), None)
        if bad is not None:
            raise ValueError(f"expected_days of '{bad}' is {value[bad]}: write a whole number "
                             "of days, 0 or more (or null: none in this segment)")
        return value

    @field_validator("ctas", mode="before")
    @classmethod
    def _cta_rules(cls, value: Any) -> Any:
        return validate_cta_rules(value) if isinstance(value, list) else value


DEFAULT_SEGMENT = "default"  # the segment of customers no segment's `when` takes


# A rule with where it is written and the segments it applies to (None: every customer).
Scoped = tuple[tuple[str | int, ...], Any, tuple[str, ...] | None]


class Prediction(RulesModel):
    """A stage (or several) that predicts an outcome within a horizon: `lifecycle backtest`
    scores it against what happened (docs/backtest.md)."""

    stage: str | list[str] = Field(min_length=1)
    outcome: str = Field(min_length=1)  # a value of the outcomes file's `outcome` column
    horizon_days: int = Field(ge=1)
    id: str | None = Field(default=None, min_length=1)  # default: the stage names
    description: str | None = None

    @property
    def stages(self) -> list[str]:
        return [self.stage] if isinstance(self.stage, str) else list(self.stage)

    @property
    def label(self) -> str:
        """What reports call the prediction: its id, else its stages."""
        return self.id or " + ".join(self.stages)


class Compliance(RulesModel):
    """Thresholds of `lifecycle check`. A key left out takes its default; for the keys
    whose default is found from the rules or the data (``owner_column``,
    ``renewal_stage``, ``renewal_date_column``, ``no_usage_days``), ``null`` turns the
    finding off (see :meth:`given`)."""

    stuck_factor: float = Field(default=2.0, ge=1)
    no_usage_days: int | None = Field(default=30, ge=1)
    owner_column: str | None = None
    renewal_stage: str | None = None
    renewal_date_column: str | None = None
    exempt_stages: list[str] | None = None
    strict_order: bool | list[str] = False
    fail_on: list[str] = Field(default_factory=list)  # findings: lifecycle_cli.compliance.findings

    def given(self, key: str) -> bool:
        """Whether ``key`` was written in the rules file (``null`` included)."""
        return key in self.model_fields_set


class ReportSettings(RulesModel):
    """How `lifecycle report` reads the lifecycle (docs/rules.md, "report")."""

    # the stages of the funnel, in order; default: see `Rules.main_path`
    main_path: list[str] | None = None
    # time in stage: fewer visits that ended than this, and no median, p90 or over_expected
    min_exits: int = Field(default=10, ge=1)


class Rules(RulesModel):
    version: Literal[1]
    name: str | None = None
    description: str | None = None
    timezone: str = "UTC"
    date_format: str | None = None  # strftime format of the customers' non-ISO dates
    columns: ColumnMap = Field(default_factory=ColumnMap)
    customers: CustomersFile = Field(default_factory=CustomersFile)
    sources: dict[str, Source] = Field(default_factory=dict)
    lookups: dict[str, Lookup] = Field(default_factory=dict)
    attributes: dict[str, AttributeTable] = Field(default_factory=dict)
    stages: list[Stage] = Field(min_length=1)
    initial_stage: str
    max_hops: int | None = Field(default=None, ge=0)
    derived: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    # a health score from weighted measures, after `derived` (lifecycle_cli.rules.scorecard)
    scorecard: Scorecard | None = None
    transitions: list[Transition] = Field(default_factory=list)
    # each one the model of its trigger (`on:`): lifecycle_cli.ctas.triggers
    ctas: list[SerializeAsAny[CTABase]] = Field(default_factory=list)
    playbooks: dict[str, list[Task]] = Field(default_factory=dict)
    default_owner: str | None = None
    business_days: bool = False  # due_days count Monday to Friday, except holidays
    holidays: list[dt.date] = Field(default_factory=list)  # days business days skip
    compliance: Compliance = Field(default_factory=Compliance)
    # the customers output's days_in_<stage>_total and last_entered_<stage> (see day.visits)
    history_columns: bool = False
    report: ReportSettings = Field(default_factory=ReportSettings)
    # stages that predict an outcome, for `lifecycle backtest`
    predictions: list[Prediction] = Field(default_factory=list)
    # groups of customers with lifecycles of their own (docs/segments.md)
    segments: list[Segment] = Field(default_factory=list)

    # Where each value came from, for error messages at run time.
    source: Any = Field(default=None, exclude=True, repr=False)
    # When items were set aside to check the rest of a broken file: section -> original indices.
    index_map: dict[str, list[int]] = Field(default_factory=dict, exclude=True, repr=False)
    # What is likely wrong but runs (a stage name misspelt in an expression), for every run.
    warnings: list[Problem] = Field(default_factory=list, exclude=True, repr=False)

    @field_validator("date_format")
    @classmethod
    def _date_format(cls, value: str | None) -> str | None:
        if value is None:
            return value
        sample = dt.date(2024, 12, 25)
        try:
            ok = dt.datetime.strptime(sample.strftime(value), value).date() == sample
        except ValueError:
            ok = False
        if not ok or not any(d in value for d in ("%d", "%e", "%j")):
            raise ValueError(
                f"'{value}' is not a date format with day, month and year; "
                'write it like "%d/%m/%Y" (25/12/2024) or "%m/%d/%Y" (12/25/2024)'
            )
        return value

    _derived = field_validator("derived", mode="before")(
        lambda v: {k: condition_text(x) for k, x in v.items()} if isinstance(v, dict) else v
    )

    @field_validator("ctas", mode="before")
    @classmethod
    def _cta_rules(cls, value: Any) -> Any:
        # the union of the triggers registered when validating, so that one registered later
        # counts; errors inside a rule name its trigger (see rules.load._clean_loc)
        return validate_cta_rules(value) if isinstance(value, list) else value

    # -- conveniences used by the engine -------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def segment_names(self) -> list[str]:
        """Every segment a customer can be in, in file order; the last takes the customers
        no other takes (``default`` unless a segment without `when` names it). Empty
        without ``segments:``."""
        if not self.segments:
            return []
        names = [s.name for s in self.segments]
        return names if self.segments[-1].when is None else [*names, DEFAULT_SEGMENT]

    def transition_rules(self) -> list[Scoped]:
        """Every transition rule: (key path, rule, segments it applies to; None: all). The
        rules of `transitions:` first, then each segment's; a base rule that a segment
        replaces (the same id) applies to the other segments only."""
        return self._scoped("transitions")

    def cta_rules(self) -> list[Scoped]:
        """Every CTA rule, as :meth:`transition_rules` gives the transition rules."""
        return self._scoped("ctas")

    def _scoped(self, section: str) -> list[Scoped]:
        names = self.segment_names
        replaced: dict[str, list[str]] = {}
        for seg in self.segments:
            for item in getattr(seg, section):
                replaced.setdefault(item.id, []).append(seg.name)
        out: list[Scoped] = []
        for i, item in enumerate(getattr(self, section)):
            gone = replaced.get(item.id)
            out.append(((section, i), item,
                        tuple(n for n in names if n not in gone) if gone else None))
        for k, seg in enumerate(self.segments):
            out += [(("segments", k, section, j), item, (seg.name,))
                    for j, item in enumerate(getattr(seg, section))]
        return out

    def expected_days_in(self, segment: str | None = None) -> dict[str, int | None]:
        """Each stage's expected days, in ``segment`` (None: the stages' own)."""
        base: dict[str, int | None] = {}
        for s in self.stages:
            base.setdefault(s.name, s.expected_days)  # the first of a name
        found = next((s for s in self.segments if s.name == segment), None)
        return base if found is None else {**base, **{
            k: v for k, v in found.expected_days.items() if k in base}}

    @property
    def owner_column(self) -> str | None:
        """The customer column that names each customer's owner: ``compliance:
        owner_column`` where written (``null``: none), else the first CTA's ``owner``."""
        if self.compliance.given("owner_column"):
            return self.compliance.owner_column
        return next((cta.owner for cta in self.ctas if cta.owner), None)

    def expressions(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """Every customer expression (key path, rule id, text): derived values, scorecard
        measures' values, transition and CTA conditions (the segments' included); not
        metrics' `where`, which read usage rows, nor the segments' `when`, which read the
        export and the metrics only."""
        out: list[tuple[tuple[str | int, ...], str, str]] = [
            (("derived", name), name, text) for name, text in self.derived.items()]
        if self.scorecard is not None:
            out += [(("scorecard", "measures", i, "value"), m.id, m.value)
                    for i, m in enumerate(self.scorecard.measures)]
        out += [((*path, "when"), t.id, t.when) for path, t, _ in self.transition_rules()]
        for path, c, _ in self.cta_rules():
            for key in ("when", "close_when"):
                text = getattr(c, key)
                if text:
                    out.append(((*path, key), c.id, text))
        return out

    @property
    def previous_names(self) -> list[str]:
        """The names that `previous()` reads anywhere in the rules, in order: a run keeps
        their values in the state for the next run."""
        return list(_previous_names(tuple(text for _, _, text in self.expressions())))

    @property
    def main_path(self) -> list[str]:
        """The funnel's stages: ``report: main_path`` where written, else the stages in
        order before the first terminal or risk stage (one that a ``from: "*"`` rule
        enters: any stage can fall into it)."""
        if self.report.main_path is not None:
            return list(self.report.main_path)
        risky = {t.to for t in self.transitions if "*" in t.from_stages}
        path = []
        for stage in self.stages:
            if stage.terminal or stage.name in risky:
                break
            path.append(stage.name)
        return path

    @property
    def effective_max_hops(self) -> int:
        return len(self.stages) if self.max_hops is None else self.max_hops

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def customer_column(self, name: str) -> str:
        """The export's own header for the rules' customer column ``name``."""
        return self.columns.customers.get(name, name)

    def usage_column(self, name: str) -> str:
        return self.source_column(USAGE, name)

    @property
    def usage_sources(self) -> dict[str, Source]:
        """Every usage source by name: `usage` first (its mapping is ``columns: usage``
        unless ``sources:`` declares it), then those of ``sources:``."""
        out = {} if USAGE in self.sources else {USAGE: Source(columns=self.columns.usage)}
        return {**out, **self.sources}

    def usage_source(self, name: str) -> Source:
        return self.usage_sources[name]

    def source_column(self, source: str, name: str) -> str:
        """The export's own header of the rules' column ``name`` in the source ``source``."""
        found = self.usage_sources.get(source)
        return name if found is None else found.columns.get(name, name)

    def metric_source(self, name: str) -> str:
        """The source the metric ``name`` reads."""
        return self.metrics[name].source or USAGE

    def metrics_of(self, source: str) -> dict[str, Metric]:
        """The metrics that read the source ``source``, in rules order."""
        return {n: m for n, m in self.metrics.items() if (m.source or USAGE) == source}

    def for_source(self, source: str) -> Rules:
        """These rules with only the metrics of ``source`` (for one pass over it)."""
        return self.model_copy(update={"metrics": self.metrics_of(source)})

    def _original(self, path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        if len(path) >= 2 and isinstance(path[1], int) and str(path[0]) in self.index_map:
            return (path[0], self.index_map[str(path[0])][path[1]], *path[2:])
        return path

    def locate(self, *path: str | int) -> tuple[str | None, int | None]:
        """(file, line) of a key path in the rules file, when known."""
        path = self._original(path)
        doc: YamlDocument | None = self.source
        if doc is None:
            return None, None
        return doc.file, doc.line_of(tuple(path))

    def problem(
        self,
        message: str,
        *path: str | int,
        rule_id: str | None = None,
        hint: str | None = None,
        column: str | None = None,
    ) -> Problem:
        """A :class:`Problem` located at ``path`` in this rules file."""
        file, line = self.locate(*path)
        return Problem(
            message,
            file=file,
            line=line,
            path=format_path(self._original(path)) or None,
            rule_id=rule_id,
            hint=hint,
            column=column,
        )


@functools.lru_cache(maxsize=64)
def _previous_names(texts: tuple[str, ...]) -> tuple[str, ...]:
    """The names ``previous()`` reads in these expressions (parsed once per set of texts:
    every day of a backfill asks)."""
    names: list[str] = []
    for text in texts:
        try:
            found = previous_names(parse(text))
        except ExpressionError:  # reported by the checks
            continue
        names += [n for n in found if n not in names]
    return tuple(names)


# -- allowed keys per section, for "did you mean" ------------------------------------------


def section_model(loc: tuple[Any, ...], data: Any = None) -> type[BaseModel] | None:
    """The model whose keys are allowed where the unknown key ``loc[-1]`` stands; ``data``,
    the rules file's data, tells a CTA rule's trigger."""
    parent = loc[:-1]
    if not parent:
        return Rules
    head = parent[0]
    if head == "columns" and len(parent) == 1:
        return ColumnMap
    if head == "compliance" and len(parent) == 1:
        return Compliance
    if head == "report" and len(parent) == 1:
        return ReportSettings
    if head == "customers" and len(parent) == 1:
        return CustomersFile
    if head == "scorecard":
        shapes: dict[tuple[Any, ...], type[BaseModel]] = {
            (): Scorecard, ("measures", 0): Measure, ("measures", 0, "linear"): Linear,
            ("measures", 0, "thresholds", 0): Threshold, ("bands", 0): Band}
        return shapes.get(tuple(0 if isinstance(x, int) else x for x in parent[1:]))
    if head == "sources" and len(parent) == 3 and parent[2] == "customer_id":
        return Via
    if head == "ctas" and len(parent) == 2:
        return model_for(cta_rule_on(data, parent[1]))
    if head == "segments":
        if len(parent) == 2:
            return Segment
        if len(parent) == 4 and parent[2] == "transitions":
            return Transition
        if len(parent) == 4 and parent[2] == "ctas":
            return model_for(cta_rule_on(data, parent[3], at=parent[:3]))
    if len(parent) == 2:
        sections: dict[str, type[BaseModel]] = {
            "stages": Stage, "transitions": Transition, "metrics": Metric, "sources": Source,
            "lookups": Lookup, "attributes": AttributeTable, "predictions": Prediction}
        return sections.get(head)
    if head == "playbooks" and len(parent) == 3:
        return Task
    return None


def cta_rule_on(data: Any, index: Any, at: tuple[Any, ...] = ("ctas",)) -> Any:
    """The `on:` written in the CTA rule ``ctas[index]`` of the rules file's ``data`` (or of
    the list at the key path ``at``: a segment's ``ctas``)."""
    items = data
    for key in at:
        try:
            items = items[key]
        except (KeyError, IndexError, TypeError):
            return None
    if isinstance(items, list) and isinstance(index, int) and 0 <= index < len(items):
        item = items[index]
        return item.get("on") if isinstance(item, dict) else None
    return None


def field_names(model: type[BaseModel]) -> list[str]:
    return [
        f.alias or name
        for name, f in model.model_fields.items()
        if name not in ("source", "index_map", "warnings")
    ]


