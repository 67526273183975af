"""The rules file: typed models, loading, and the checks that need no data.

Loading collects every problem (unknown keys with a suggestion, wrong types,
unknown stages, duplicate ids, bad expressions) and raises them together as
one :class:`~lifecycle_cli.errors.RulesError`, each with file, line, key path
and rule id.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import zoneinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import expressions
from .errors import Problem, RulesError
from .yamlsource import YamlDocument, format_path, load_yaml

AGGREGATIONS = ("count", "sum", "mean", "min", "max", "n_unique", "any", "first", "last")
NO_COLUMN_AGGS = ("count", "any")
BUILTINS = ("as_of", "stage", "stage_entered_at", "days_in_stage")
REQUIRED_CUSTOMER_COLUMNS = ("customer_id",)
REQUIRED_USAGE_COLUMNS = ("customer_id", "timestamp")
# What `lifecycle check` finds, most severe first (also the order of its findings table).
FINDING_KINDS = (
    "unknown_stage",
    "entered_in_future",
    "stuck",
    "overdue",
    "cta_past_due",
    "skipped_stage",
    "no_owner",
    "no_renewal_date",
    "no_usage",
    "override",
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _condition_text(value: Any) -> Any:
    # `when: true` in YAML is a boolean, not a string; accept it as the SQL literal.
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return value


class Stage(_Model):
    name: str = Field(min_length=1)
    expected_days: int | None = Field(default=None, ge=0)
    description: str | None = None
    terminal: bool = False


class ColumnMap(_Model):
    customers: dict[str, str] = Field(default_factory=dict)
    usage: dict[str, str] = Field(default_factory=dict)


class Metric(_Model):
    agg: Literal["count", "sum", "mean", "min", "max", "n_unique", "any", "first", "last"]
    column: str | None = None
    where: str | None = None
    window_days: int | None = Field(default=None, ge=1)
    default: bool | int | float | str | None = None
    description: str | None = None


class Transition(_Model):
    id: str = Field(min_length=1)
    from_: str | list[str] = Field(alias="from")
    to: str
    when: str
    priority: int = 0
    description: str | None = None

    _when = field_validator("when", mode="before")(_condition_text)

    @property
    def from_stages(self) -> list[str]:
        return [self.from_] if isinstance(self.from_, str) else list(self.from_)


class Task(_Model):
    task: str
    due_days: int = Field(default=0, ge=0)
    owner: str | None = None
    description: str | None = None


class CTA(_Model):
    id: str = Field(min_length=1)
    name: str
    type: str = "Lifecycle"
    priority: str | int = "Medium"
    on: Literal["enter", "overdue", "when"]
    stage: str | None = None
    when: str | None = None
    close_when: str | None = None
    due_days: int = Field(default=0, ge=0)
    owner: str | None = None
    playbook: str | None = None
    description: str | None = None

    _when = field_validator("when", "close_when", mode="before")(_condition_text)


class Compliance(_Model):
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
    fail_on: list[str] = Field(default_factory=list)

    def given(self, key: str) -> bool:
        """Whether ``key`` was written in the rules file (``null`` included)."""
        return key in self.model_fields_set


class Rules(_Model):
    version: Literal[1]
    name: str | None = None
    description: str | None = None
    timezone: str = "UTC"
    date_format: str | None = None  # strftime format of the customers' non-ISO dates
    columns: ColumnMap = Field(default_factory=ColumnMap)
    stages: list[Stage] = Field(min_length=1)
    initial_stage: str
    max_hops: int | None = Field(default=None, ge=0)
    derived: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    transitions: list[Transition] = Field(default_factory=list)
    ctas: list[CTA] = Field(default_factory=list)
    playbooks: dict[str, list[Task]] = Field(default_factory=dict)
    default_owner: str | None = None
    compliance: Compliance = Field(default_factory=Compliance)

    # Where each value came from, for error messages at run time.
    source: Any = Field(default=None, exclude=True, repr=False)
    # When items were set aside to check the rest of a broken file: section -> original indices.
    index_map: dict[str, list[int]] = Field(default_factory=dict, exclude=True, repr=False)

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
        lambda v: {k: _condition_text(x) for k, x in v.items()} if isinstance(v, dict) else v
    )

    # -- conveniences used by the engine -------------------------------------------------
    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    @property
    def owner_column(self) -> str | None:
        """The customer column that names each customer's owner: ``compliance:
        owner_column`` where written (``null``: none), else the first CTA's ``owner``."""
        if self.compliance.given("owner_column"):
            return self.compliance.owner_column
        return next((cta.owner for cta in self.ctas if cta.owner), None)

    @property
    def effective_max_hops(self) -> int:
        return len(self.stages) if self.max_hops is None else self.max_hops

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def customer_column(self, name: str) -> str:
        """The export's own header for the rules' customer column ``name``."""
        return self.columns.customers.get(name, name)

    def usage_column(self, name: str) -> str:
        return self.columns.usage.get(name, name)

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


# -- allowed keys per section, for "did you mean" ------------------------------------------


def _section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose keys are allowed where the unknown key ``loc[-1]`` stands."""
    parent = loc[:-1]
    if not parent:
        return Rules
    head = parent[0]
    if head == "columns" and len(parent) == 1:
        return ColumnMap
    if head == "compliance" and len(parent) == 1:
        return Compliance
    if len(parent) == 2:
        sections: dict[str, type[BaseModel]] = {
            "stages": Stage, "transitions": Transition, "ctas": CTA, "metrics": Metric}
        return sections.get(
            head
        )
    if head == "playbooks" and len(parent) == 3:
        return Task
    return None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [
        f.alias or name
        for name, f in model.model_fields.items()
        if name not in ("source", "index_map")
    ]


def suggest(
    word: str, candidates: list[str] | tuple[str, ...], *, cutoff: float = 0.6
) -> str | None:
    """The closest candidate to ``word``, or None."""
    lowered = {c.lower(): c for c in candidates}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return lowered[word.lower()]
    found = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    if not found:
        found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
        found = [lowered[f] for f in found]
    return found[0] if found else None


def did_you_mean(word: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    best = suggest(word, candidates)
    return f"did you mean '{best}'?" if best else None


# -- loading -----------------------------------------------------------------------------


def load_rules(path: str | Path) -> Rules:
    """Load and check a rules file; raise :class:`RulesError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RulesError(Problem("rules file not found", file=str(path))) from None
    except UnicodeDecodeError as err:
        raise RulesError(
            Problem(f"rules file is not UTF-8 text ({err.reason})", file=str(path))
        ) from None
    except OSError as err:
        raise RulesError(
            Problem(f"cannot read rules file: {err.strerror}", file=str(path))
        ) from None
    return parse_rules(text, file=str(path))


def parse_rules(text: str, file: str | None = None) -> Rules:
    """Parse rules from YAML text (see :func:`load_rules`)."""
    doc = load_yaml(text, file)
    data = doc.data
    if not isinstance(data, dict):
        raise RulesError(
            Problem(
                "a rules file is a YAML mapping with `version`, `stages`, `initial_stage`, ...",
                file=file,
                line=1,
            )
        )
    problems: list[Problem] = []
    try:
        rules: Rules | None = Rules.model_validate(data)
    except ValidationError as err:
        problems.extend(_pydantic_problems(err, data, doc))
        rules = _validate_the_rest(data, err)
    if rules is not None:
        rules = rules.model_copy(update={"source": doc})
        problems.extend(cross_check(rules))
    else:
        # Even with schema errors, report stage/id problems we can still see.
        problems.extend(_loose_cross_check(data, doc))
    if problems:
        raise RulesError(_dedupe(problems))
    assert rules is not None
    return rules


_LIST_SECTIONS = ("stages", "transitions", "ctas")
_MAP_SECTIONS = ("metrics", "derived", "playbooks")


def _validate_the_rest(data: dict[str, Any], err: ValidationError) -> Rules | None:
    """Set aside what failed validation and validate the rest, so that the cross-checks
    can still report their problems in the same pass."""
    data = copy.deepcopy(data)
    drop_items: dict[str, set[int]] = {}
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        if not loc:
            return None
        head = str(loc[0])
        if e["type"] == "extra_forbidden":
            parent: Any = data
            for part in loc[:-1]:
                try:
                    parent = parent[part]
                except (KeyError, IndexError, TypeError):
                    parent = None
            if isinstance(parent, dict):  # None: an earlier error set its section aside
                parent.pop(loc[-1], None)
        elif head == "compliance" and len(loc) >= 2 and isinstance(data.get(head), dict):
            data[head].pop(loc[1], None)  # that key takes its default
        elif head in _LIST_SECTIONS and len(loc) >= 2 and isinstance(loc[1], int):
            drop_items.setdefault(head, set()).add(loc[1])
        elif head in _MAP_SECTIONS and len(loc) >= 2:
            data[head].pop(loc[1], None)
        elif head in ("version",):
            data["version"] = 1
        elif head in Rules.model_fields and head not in ("stages", "initial_stage"):
            data.pop(head, None)
        else:
            return None
    index_map: dict[str, list[int]] = {}
    for head, dropped in drop_items.items():
        kept = [i for i in range(len(data[head])) if i not in dropped]
        index_map[head] = kept
        data[head] = [data[head][i] for i in kept]
    try:
        rules = Rules.model_validate(data)
    except ValidationError:
        return None
    return rules.model_copy(update={"index_map": index_map})


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic adds union member names to loc (e.g. 'str', 'list[str]'): drop those
    return tuple(
        p
        for p in loc
        if p not in ("str", "int", "bool", "float", "list[str]")
        and not (isinstance(p, str) and p.startswith(("function-", "literal[")))
    )


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        key = p.render()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return sorted(out, key=lambda p: p.line or 0)


def _rule_id_at(data: dict[str, Any], loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] in ("transitions", "ctas") and isinstance(loc[1], int):
        items = data.get(loc[0])
        if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
            rid = items[loc[1]].get("id")
            return str(rid) if rid is not None else None
    if len(loc) >= 2 and loc[0] in ("metrics", "derived", "playbooks"):
        return str(loc[1])
    return None


def _pydantic_problems(
    err: ValidationError, data: dict[str, Any], doc: YamlDocument
) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = _clean_loc(e["loc"])
        kind = e["type"]
        hint = None
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _section_model(loc)
            allowed = _field_names(model) if model else []
            hint = did_you_mean(key, allowed)
            if not hint and allowed:
                hint = "allowed keys: " + ", ".join(allowed)
            message = f"unknown key '{key}'"
        elif kind == "missing":
            message = f"required key '{loc[-1]}' is missing"
        elif kind == "literal_error":
            found = e.get("input")
            expected = e.get("ctx", {}).get("expected", "")
            message = f"'{found}' is not allowed here; expected {expected}"
            if isinstance(found, str) and loc and loc[-1] == "agg":
                hint = did_you_mean(found, AGGREGATIONS)
            elif isinstance(found, str) and loc and loc[-1] == "on":
                hint = did_you_mean(found, ["enter", "overdue", "when"])
        elif kind == "value_error":  # our own validators say what they expect
            message = str(e.get("ctx", {}).get("error", e["msg"]))
        else:
            message = f"{e['msg'].lower()} (found {e.get('input')!r})"
        problems.append(
            Problem(
                message,
                file=doc.file,
                line=doc.line_of(loc),
                path=format_path(loc) or None,
                rule_id=_rule_id_at(data, loc),
                hint=hint,
            )
        )
    return problems


def _loose_cross_check(data: dict[str, Any], doc: YamlDocument) -> list[Problem]:
    """Duplicate ids and unknown stages, from raw data, when the schema check failed."""
    problems: list[Problem] = []
    stages = data.get("stages")
    items = stages if isinstance(stages, list) else []
    names: list[str] = [s["name"] for s in items if isinstance(s, dict)
                        and isinstance(s.get("name"), str)]
    transitions = data.get("transitions")
    if not isinstance(transitions, list) or not names:
        return problems
    for i, t in enumerate(transitions):
        if not isinstance(t, dict):
            continue
        for key in ("from", "to"):
            value = t.get(key)
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, str) and v != "*" and v not in names:
                    problems.append(
                        Problem(
                            f"unknown stage '{v}'",
                            file=doc.file,
                            line=doc.line_of(("transitions", i, key)),
                            path=format_path(("transitions", i, key)),
                            rule_id=str(t.get("id")),
                            hint=did_you_mean(v, names),
                        )
                    )
    return problems


def cross_check(rules: Rules) -> list[Problem]:
    """Checks across sections that need no data: stages, ids, metrics, expressions."""
    problems: list[Problem] = []
    p = rules.problem
    names = rules.stage_names

    problems += _duplicates(rules, "stages", "name", "stage name")

    def check_stage(value: str, *path: str | int, rule_id: str | None = None) -> None:
        if value not in names:
            problems.append(
                p(
                    f"unknown stage '{value}'",
                    *path,
                    rule_id=rule_id,
                    hint=did_you_mean(value, names) or "stages: " + ", ".join(names),
                )
            )

    check_stage(rules.initial_stage, "initial_stage")
    if rules.initial_stage in names and rules.stage(rules.initial_stage).terminal:
        problems.append(
            p(
                "initial_stage is a terminal stage: new customers could never leave it",
                "initial_stage",
            )
        )

    try:
        zoneinfo.ZoneInfo(rules.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            p(
                f"unknown time zone '{rules.timezone}'",
                "timezone",
                hint=did_you_mean(rules.timezone, sorted(zoneinfo.available_timezones()))
                or "use an IANA name such as 'UTC' or 'Europe/Berlin'",
            )
        )

    problems += _duplicates(rules, "transitions", "id", "transition id")
    problems += _duplicates(rules, "ctas", "id", "CTA id")
    for i, t in enumerate(rules.transitions):
        if t.id == "initial":
            problems.append(
                p(
                    "the rule id 'initial' is reserved for initial assignments",
                    "transitions",
                    i,
                    "id",
                    rule_id=t.id,
                )
            )
        for j, f in enumerate(t.from_stages):
            if f == "*":
                continue
            path = ("transitions", i, "from") + ((j,) if isinstance(t.from_, list) else ())
            check_stage(f, *path, rule_id=t.id)
            if f == t.to:
                problems.append(
                    p(
                        f"a rule cannot move customers from '{f}' to itself",
                        "transitions",
                        i,
                        "from",
                        rule_id=t.id,
                        hint='remove it from `from`, or use "*" (which skips `to`)',
                    )
                )
        check_stage(t.to, "transitions", i, "to", rule_id=t.id)

    for i, c in enumerate(rules.ctas):
        if c.stage is not None:
            check_stage(c.stage, "ctas", i, "stage", rule_id=c.id)
        elif c.on in ("enter", "overdue"):
            problems.append(p(f"a CTA with `on: {c.on}` needs a `stage`", "ctas", i, rule_id=c.id))
        if c.on == "when" and not c.when:
            problems.append(
                p("a CTA with `on: when` needs a `when` condition", "ctas", i, rule_id=c.id)
            )
        if c.on != "when" and c.when:
            problems.append(
                p(
                    f"`when` only applies to `on: when` CTAs (this one is `on: {c.on}`)",
                    "ctas",
                    i,
                    "when",
                    rule_id=c.id,
                )
            )
        if c.on == "overdue" and c.stage in names and rules.stage(c.stage).expected_days is None:
            problems.append(
                p(
                    f"stage '{c.stage}' has no expected_days, so nobody is ever overdue in it",
                    "ctas",
                    i,
                    "stage",
                    rule_id=c.id,
                )
            )
        if c.playbook is not None and c.playbook not in rules.playbooks:
            problems.append(
                p(
                    f"unknown playbook '{c.playbook}'",
                    "ctas",
                    i,
                    "playbook",
                    rule_id=c.id,
                    hint=did_you_mean(c.playbook, list(rules.playbooks)),
                )
            )

    reserved = set(BUILTINS)
    outputs = {"previous_stage", "days_in_stage", "expected_days", "overdue"}
    for name in rules.derived:
        if name in reserved or name in outputs:
            problems.append(
                p(f"'{name}' is a built-in name; choose another", "derived", name, rule_id=name)
            )
    for name, m in rules.metrics.items():
        if name in reserved or name in outputs:
            problems.append(
                p(f"'{name}' is a built-in name; choose another", "metrics", name, rule_id=name)
            )
        if name in rules.derived:
            problems.append(
                p(f"'{name}' is both a metric and a derived value", "metrics", name, rule_id=name)
            )
        if m.agg in NO_COLUMN_AGGS and m.column is not None:
            problems.append(
                p(
                    f"`{m.agg}` counts rows and takes no `column`",
                    "metrics",
                    name,
                    "column",
                    rule_id=name,
                    hint=f'use `where: "{m.column} IS NOT NULL"` to count rows with a value',
                )
            )
        if m.agg not in NO_COLUMN_AGGS and m.column is None:
            problems.append(p(f"`{m.agg}` needs a `column`", "metrics", name, rule_id=name))

    problems.extend(_check_compliance(rules))
    problems.extend(_check_expressions(rules))
    return problems


def compliance_column_problems(rules: Rules, columns: list[str]) -> list[Problem]:
    """The columns that `compliance:` names and the customers export (``columns``, rules'
    names) lacks. `check` and `validate` report them; `run` does not read these columns."""
    problems = []
    for key in ("owner_column", "renewal_date_column"):
        column = getattr(rules.compliance, key)
        if column is not None and column not in columns:
            problems.append(rules.problem(
                f"the column '{column}' is not in the customers export", "compliance", key,
                hint=did_you_mean(column, [c for c in columns if not c.startswith("__")])))
    return problems


def _check_compliance(rules: Rules) -> list[Problem]:
    """Stage names and finding kinds in `compliance:` (its columns need the data: see
    `engine.compile_rules`)."""
    c = rules.compliance
    names = rules.stage_names
    problems: list[Problem] = []

    def check_stage(value: str, *path: str | int) -> None:
        if value not in names:
            problems.append(rules.problem(
                f"unknown stage '{value}'", "compliance", *path,
                hint=did_you_mean(value, names) or "stages: " + ", ".join(names)))

    if c.renewal_stage is not None:
        check_stage(c.renewal_stage, "renewal_stage")
    for i, stage in enumerate(c.exempt_stages or []):
        check_stage(stage, "exempt_stages", i)
    if isinstance(c.strict_order, list):
        seen: set[str] = set()
        for i, stage in enumerate(c.strict_order):
            check_stage(stage, "strict_order", i)
            if stage in seen:
                problems.append(rules.problem(
                    f"'{stage}' is named twice in strict_order", "compliance", "strict_order", i))
            seen.add(stage)
        if len(c.strict_order) < 2:
            problems.append(rules.problem(
                "strict_order needs at least two stages, in the order customers must pass them",
                "compliance", "strict_order", hint="or `true` for every stage in file order"))
    for i, kind in enumerate(c.fail_on):
        if kind != "any" and kind not in FINDING_KINDS:
            problems.append(rules.problem(
                f"unknown finding '{kind}'", "compliance", "fail_on", i,
                hint=did_you_mean(kind, [*FINDING_KINDS, "any"])
                or "findings: " + ", ".join(FINDING_KINDS)))
    return problems


def _duplicates(rules: Rules, section: str, key: str, label: str) -> list[Problem]:
    """A problem for each item of ``section`` whose ``key`` an earlier item already has."""
    problems = []
    first: dict[str, int] = {}
    for i, item in enumerate(getattr(rules, section)):
        value = getattr(item, key)
        if value in first:
            problems.append(rules.problem(
                f"duplicate {label} '{value}' (also {section}[{first[value]}])", section, i, key,
                rule_id=value if key == "id" else None))
        first.setdefault(value, i)
    return problems


def _check_expressions(rules: Rules) -> list[Problem]:
    """Syntax and name-order checks of every expression (types need the data)."""
    problems: list[Problem] = []
    derived_names = list(rules.derived)
    metric_names = set(rules.metrics)

    def check(text: str, path: tuple[str | int, ...], rule_id: str,
              refused: dict[str, tuple[str, str]] | None = None) -> None:
        """Parse ``text``; names in ``refused`` map to (why, hint)."""
        try:
            tree = expressions.parse(text)
        except expressions.ExpressionError as err:
            problems.append(rules.problem(err.message, *path, rule_id=rule_id, hint=err.hint))
            return
        for name in expressions.referenced_names(tree):
            if refused and name in refused:
                why, hint = refused[name]
                problems.append(rules.problem(why, *path, rule_id=rule_id, hint=hint))

    for i, name in enumerate(derived_names):
        later = {
            n: (f"'{n}' is a derived value defined further down; derived values may only use "
                "the ones above them", "move it up")
            for n in derived_names[i:]
        }
        check(rules.derived[name], ("derived", name), name, later)
    usage_only = {
        n: (f"'{n}' is a {'metric' if n in metric_names else 'derived value'}; a metric's "
            "`where` reads the usage export's columns",
            "filter on usage columns, e.g. \"event = 'login'\"")
        for n in (*metric_names, *derived_names)
    }
    for name, m in rules.metrics.items():
        if m.where:
            check(m.where, ("metrics", name, "where"), name, usage_only)
    for i, t in enumerate(rules.transitions):
        check(t.when, ("transitions", i, "when"), t.id)
    for i, c in enumerate(rules.ctas):
        for key in ("when", "close_when"):
            text = getattr(c, key)
            if text:
                check(text, ("ctas", i, key), c.id)
    return problems
