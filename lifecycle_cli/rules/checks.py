"""Checks across the sections of a rules file that need no data: stages, ids, metrics,
expressions and the compliance settings."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator, Sequence
from typing import Any

from sqlglot import exp

from ..columns import (
    BUILTINS,
    COMPUTED_COLUMNS,
    ENTERED,
    ID,
    SEGMENT,
    STAGE,
    history_columns,
    stage_slug,
)
from ..compliance import findings
from ..ctas.triggers import trigger as cta_trigger
from ..errors import Problem
from ..expressions import ExpressionError, parse, previous_names, referenced_names
from ..metrics.aggregations import aggregation
from ..suggest import did_you_mean
from .model import TABLE_NAME, USAGE, Rules
from .scorecard import check_scorecard, derived_problems
from .segments import check_segments


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
    problems += _duplicates(rules, "segments", "name", "segment name")
    for k, seg in enumerate(rules.segments):  # ids once per segment: it may reuse the file's
        for section, label in (("transitions", "transition id"), ("ctas", "CTA id")):
            problems += _duplicates(rules, section, "id", label, at=("segments", k),
                                    items=getattr(seg, section),
                                    within=f" in the segment '{seg.name}'")
    for path, t, _ in rules.transition_rules():
        if t.id == "initial":
            problems.append(p("the rule id 'initial' is reserved for initial assignments",
                              *path, "id", rule_id=t.id))
        for j, f in enumerate(t.from_stages):
            if f == "*":
                continue
            check_stage(f, *path, "from", *((j,) if isinstance(t.from_, list) else ()),
                        rule_id=t.id)
            if f == t.to:
                problems.append(p(f"a rule cannot move customers from '{f}' to itself",
                                  *path, "from", rule_id=t.id,
                                  hint='remove it from `from`, or use "*" (which skips `to`)'))
        check_stage(t.to, *path, "to", rule_id=t.id)

    for path, c, scope in rules.cta_rules():
        # each stage's expected_days (in the segment of a segment's own rule)
        expected_days = rules.expected_days_in(scope[0] if path[0] == "segments" and scope
                                               else None)
        trigger = cta_trigger(c.on)
        if c.stage is not None:
            check_stage(c.stage, *path, "stage", rule_id=c.id)
        elif trigger.needs_stage:
            problems.append(p(f"a CTA with `on: {c.on}` needs a `stage`", *path, rule_id=c.id))
        for message, key in trigger.check(c, expected_days):
            problems.append(p(message, *path, *([key] if key else []), rule_id=c.id))
        if c.playbook is not None and c.playbook not in rules.playbooks:
            problems.append(p(f"unknown playbook '{c.playbook}'", *path, "playbook",
                              rule_id=c.id, hint=did_you_mean(c.playbook, list(rules.playbooks))))

    # the names the tool gives a column: no derived value or metric may take one
    builtin = set(BUILTINS) | set(COMPUTED_COLUMNS)
    for section, what in (("derived", "a derived value"), ("metrics", "a metric")):
        for name in getattr(rules, section):
            if name in builtin:
                problems.append(p(f"'{name}' is a built-in name; choose another", section, name,
                                  rule_id=name))
            elif name == SEGMENT and rules.segments:
                problems.append(p(f"`segments:` adds the column '{SEGMENT}': {what} cannot "
                                  "take its name", section, name, rule_id=name,
                                  hint="rename it"))
    for name, m in rules.metrics.items():
        if name in rules.derived:
            problems.append(
                p(f"'{name}' is both a metric and a derived value", "metrics", name, rule_id=name)
            )
        takes_column = aggregation(m.agg).takes_column
        if not takes_column and m.column is not None:
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
        if takes_column and m.column is None:
            problems.append(p(f"`{m.agg}` needs a `column`", "metrics", name, rule_id=name))

    problems.extend(_check_tables(rules))
    problems.extend(_check_compliance(rules))
    problems.extend(_check_report(rules))
    problems.extend(_check_predictions(rules))
    problems.extend(_check_expressions(rules))
    problems.extend(_check_history_columns(rules))
    problems.extend(check_scorecard(rules, _taken_names(rules)))
    problems.extend(derived_problems(rules))
    problems.extend(check_segments(rules))
    return problems


def _taken_names(rules: Rules) -> dict[str, str]:
    """The names a scorecard's columns must not take: name -> what it is."""
    taken = {n: "a built-in name" for n in (*BUILTINS, *COMPUTED_COLUMNS)}
    taken |= {n: f"the derived value '{n}'" for n in rules.derived}
    taken |= {n: f"the metric '{n}'" for n in rules.metrics}
    if rules.segments:
        taken[SEGMENT] = "the column that `segments:` adds"
    if rules.history_columns:
        taken |= {n: "a column that history_columns adds" for n in
                  history_columns(rules.stage_names)}
    return taken


def _check_history_columns(rules: Rules) -> list[Problem]:
    """`history_columns: true` names two columns after each stage: the names must differ
    from each other and from the derived values and metrics."""
    if not rules.history_columns:
        return []
    problems = []
    by_slug: dict[str, str] = {}
    for i, stage in enumerate(rules.stage_names):
        slug = stage_slug(stage)
        if not slug:
            problems.append(rules.problem(
                f"history_columns: the stage '{stage}' gives no column name (it has no letter "
                "or digit)", "stages", i, "name", hint="rename the stage"))
        elif slug in by_slug and by_slug[slug] != stage:
            problems.append(rules.problem(
                f"history_columns: the stages '{by_slug[slug]}' and '{stage}' give the same "
                f"column names (days_in_{slug}_total)", "stages", i, "name",
                hint="rename one of them, or turn history_columns off"))
        by_slug.setdefault(slug, stage)
    taken = set(history_columns(rules.stage_names))
    for section in ("derived", "metrics"):
        for name in getattr(rules, section):
            if name in taken:
                problems.append(rules.problem(
                    f"'{name}' is a column that history_columns adds; choose another name",
                    section, name, rule_id=name))
    return problems


def _check_tables(rules: Rules) -> list[Problem]:
    """Sources, lookups and attribute tables: their names, the lookups the sources go
    through, the sources the metrics read. Their columns need the data (`inputs`)."""
    problems: list[Problem] = []
    p = rules.problem
    for section in ("sources", "lookups", "attributes"):
        for name in getattr(rules, section):
            if not re.match(TABLE_NAME, name):
                problems.append(p(
                    f"'{name}' cannot name a table: it is written NAME=PATH on the command "
                    "line", section, name, rule_id=name,
                    hint="use letters, digits, '_' and '-', starting with a letter"))
    if USAGE in rules.sources and rules.columns.usage:
        problems.append(p(
            "the source `usage` is mapped twice: in `columns: usage` and in `sources: usage`",
            "sources", USAGE, hint="keep one: move the mapping into sources: usage: columns"))
    lookups = list(rules.lookups)
    for name, source in rules.sources.items():
        if source.customer_id is None:
            continue
        via = source.customer_id.via
        if via not in rules.lookups:
            problems.append(p(
                f"unknown lookup '{via}'", "sources", name, "customer_id", "via", rule_id=name,
                hint=did_you_mean(via, lookups) or (
                    "lookups: " + ", ".join(lookups) if lookups
                    else f"declare it: lookups: {{{via}: {{key: ..., customer_id: ...}}}}")))
        if ID in source.columns:
            problems.append(p(
                f"the customer comes through the lookup '{via}': `columns` cannot map "
                f"{ID} too", "sources", name, "columns", ID, rule_id=name,
                hint=f"remove {ID} from columns, or remove customer_id: {{via: ...}}"))
    for name, lookup in rules.lookups.items():
        if lookup.key == lookup.customer_id:
            problems.append(p(
                f"the key and the customer id are the same column '{lookup.key}'",
                "lookups", name, "key", rule_id=name,
                hint="key: the column the usage rows carry (e.g. subscription_id); "
                "customer_id: the lookup's column of customer ids (e.g. account_id)"))
    for name, table in rules.attributes.items():
        for column in (STAGE, ENTERED):
            if column in table.columns:
                problems.append(p(
                    f"'{column}' comes from the customers export, not from an attribute table",
                    "attributes", name, "columns", column, rule_id=name))
    sources = list(rules.usage_sources)
    for name, m in rules.metrics.items():
        if m.source is not None and m.source not in rules.usage_sources:
            problems.append(p(
                f"unknown source '{m.source}'", "metrics", name, "source", rule_id=name,
                hint=did_you_mean(m.source, sources) or "sources: " + ", ".join(sources)))
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
    kinds = findings.names()  # the registered findings (lifecycle_cli.compliance.findings)
    for i, kind in enumerate(c.fail_on):
        if kind != "any" and kind not in kinds:
            problems.append(rules.problem(
                f"unknown finding '{kind}'", "compliance", "fail_on", i,
                hint=did_you_mean(kind, [*kinds, "any"]) or "findings: " + ", ".join(kinds)))
    return problems


def _check_report(rules: Rules) -> list[Problem]:
    """The stages of `report: main_path`: known, each once, and no terminal stage before
    its end (nobody would go on from it)."""
    names = rules.stage_names
    problems: list[Problem] = []
    seen: set[str] = set()
    path = rules.report.main_path or []
    for i, stage in enumerate(path):
        if stage not in names:
            problems.append(rules.problem(
                f"unknown stage '{stage}'", "report", "main_path", i,
                hint=did_you_mean(stage, names) or "stages: " + ", ".join(names)))
        elif stage in seen:
            problems.append(rules.problem(
                f"'{stage}' is named twice in main_path", "report", "main_path", i))
        elif rules.stage(stage).terminal and i < len(path) - 1:
            problems.append(rules.problem(
                f"'{stage}' is a terminal stage: only the last stage of main_path may be one",
                "report", "main_path", i, hint="end the path there, or leave it out"))
        seen.add(stage)
    if rules.report.main_path is not None and len(path) < 2:
        problems.append(rules.problem(
            "main_path needs at least two stages, in the order customers pass them",
            "report", "main_path", hint="or leave it out: the stages before the first risk "
            "or terminal stage"))
    return problems


def _check_predictions(rules: Rules) -> list[Problem]:
    """`predictions:` (for `lifecycle backtest`): known stages, each once per prediction,
    and labels that tell the predictions apart. Outcome names are the outcomes file's."""
    names = rules.stage_names
    problems = []
    labels: dict[str, int] = {}
    for i, prediction in enumerate(rules.predictions):
        listed = isinstance(prediction.stage, list)
        seen: set[str] = set()
        for j, stage in enumerate(prediction.stages):
            path = ("predictions", i, "stage", *((j,) if listed else ()))
            if stage not in names:
                problems.append(rules.problem(
                    f"unknown stage '{stage}'", *path, rule_id=prediction.id,
                    hint=did_you_mean(stage, names) or "stages: " + ", ".join(names)))
            elif stage in seen:
                problems.append(rules.problem(
                    f"'{stage}' is named twice in this prediction", *path,
                    rule_id=prediction.id))
            seen.add(stage)
        label = prediction.label
        if label in labels:
            problems.append(rules.problem(
                f"two predictions are called '{label}'", "predictions", i,
                *(("id",) if prediction.id else ("stage",)), rule_id=prediction.id,
                hint="give each one its own `id` (reports name predictions by it)"))
        labels.setdefault(label, i)
    return problems


def _duplicates(rules: Rules, section: str, key: str, label: str, *,
                at: tuple[str | int, ...] = (), items: Sequence[Any] | None = None,
                within: str = "") -> list[Problem]:
    """A problem for each item of ``section`` whose ``key`` an earlier item already has;
    ``items`` at the key path ``at`` (a segment's rules), ``within`` saying where."""
    problems = []
    first: dict[str, int] = {}
    for i, item in enumerate(getattr(rules, section) if items is None else items):
        value = getattr(item, key)
        if value in first:
            problems.append(rules.problem(
                f"duplicate {label} '{value}'{within} (also {section}[{first[value]}])", *at,
                section, i, key, rule_id=value if key == "id" else None))
        first.setdefault(value, i)
    return problems


def _check_expressions(rules: Rules) -> list[Problem]:
    """Syntax and name-order checks of every expression (types need the data)."""
    problems: list[Problem] = []
    derived_names = list(rules.derived)
    metric_names = set(rules.metrics)

    def check(text: str, path: tuple[str | int, ...], rule_id: str,
              refused: dict[str, tuple[str, str]] | None = None, *,
              previous: tuple[str, str] | None = None) -> None:
        """Parse ``text``; names in ``refused`` map to (why, hint). ``previous``: where
        ``previous()`` may not appear, (what this is, what it reads)."""
        try:
            tree = parse(text)
            read_before = previous_names(tree)
        except ExpressionError as err:
            problems.append(rules.problem(err.message, *path, rule_id=rule_id, hint=err.hint))
            return
        if read_before and previous:
            what, reads = previous
            problems.append(rules.problem(
                f"previous({read_before[0]}) is not allowed in {what}", *path,
                rule_id=rule_id, hint="previous() reads a customer's value at the state's "
                f"previous run; {reads}"))
        for name in referenced_names(tree):
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
            check(m.where, ("metrics", name, "where"), name, usage_only,
                  previous=("a metric's `where`", "a `where` reads usage rows"))
    for path, t, _ in rules.transition_rules():
        check(t.when, (*path, "when"), t.id)
    for path, c, _ in rules.cta_rules():
        for key in ("when", "close_when"):
            text = getattr(c, key)
            if text:
                check(text, (*path, key), c.id)
    # a segment is chosen before the stages are decided, from the export and the metrics
    computed = [*BUILTINS, *COMPUTED_COLUMNS, SEGMENT]
    if rules.scorecard is not None:
        computed += rules.scorecard.columns
    not_yet = {
        n: (f"'{n}' is computed after a customer's segment is chosen; a segment's `when` "
            "reads the customers export's columns and the metrics",
            "write the condition on export columns or metrics" + (
                f" (the derived value is {rules.derived[n]!r})" if n in rules.derived else ""))
        for n in (*derived_names, *computed) if n != SEGMENT}
    for k, seg in enumerate(rules.segments):
        if seg.when:
            check(seg.when, ("segments", k, "when"), seg.name, not_yet,
                  previous=("a segment's `when`", "a segment is chosen from today's export "
                            "and metrics"))
    return problems


def stage_literal_warnings(rules: Rules) -> list[Problem]:
    """Text compared with `stage` that names no stage: `stage = 'Adoptng'` is valid SQL that
    is never true (and `<>`, `NOT IN` always true). A warning with the closest stage."""
    names = rules.stage_names
    expressions: list[tuple[str, tuple[str | int, ...], str]] = [
        (text, ("derived", name), name) for name, text in rules.derived.items()]
    expressions += [(t.when, (*path, "when"), t.id) for path, t, _ in rules.transition_rules()]
    expressions += [(text, (*path, key), c.id) for path, c, _ in rules.cta_rules()
                    for key in ("when", "close_when") if (text := getattr(c, key))]
    # and the scorecard's band: `health_band = 'Red'` never matches either
    named = {STAGE: ("stage", names)}
    if rules.segments:
        named[SEGMENT] = ("segment", rules.segment_names)
    if rules.scorecard is not None:
        named[rules.scorecard.band_column] = ("band", [b.name for b in rules.scorecard.bands])
    warnings = []
    for text, path, rule_id in expressions:
        try:
            tree = parse(text)
        except ExpressionError:
            continue  # cross_check reported it
        for column, (what, known) in named.items():
            for value in _compared_with(tree, column):
                if value not in known:
                    hint = did_you_mean(value, known) or f"{what}s: " + ", ".join(known)
                    warnings.append(rules.problem(
                        f"'{value}' is compared with `{column}` but is not a {what}, so that "
                        "comparison never matches", *path, rule_id=rule_id, hint=hint))
    return warnings


def _compared_with(tree: exp.Expression, column: str = STAGE) -> Iterator[str]:
    """The text literals that ``tree`` compares with the built-in `stage` (or another
    ``column``): `=`, `<>`, `IN (...)` and `CASE stage WHEN ...`, either way round."""
    def is_stage(node: exp.Expression | None) -> bool:
        return isinstance(node, exp.Column) and node.name == column and not node.table

    def text_of(node: exp.Expression | None) -> str | None:
        return node.this if isinstance(node, exp.Literal) and node.is_string else None

    for node in tree.find_all(exp.EQ, exp.NEQ, exp.In, exp.Case):
        if isinstance(node, exp.In) and is_stage(node.this):
            values = [text_of(item) for item in node.expressions]
        elif isinstance(node, exp.Case) and is_stage(node.this):
            values = [text_of(branch.this) for branch in node.args.get("ifs") or []]
        elif isinstance(node, exp.EQ | exp.NEQ) and is_stage(node.this):
            values = [text_of(node.expression)]
        elif isinstance(node, exp.EQ | exp.NEQ) and is_stage(node.expression):
            values = [text_of(node.this)]
        else:
            continue
        yield from (v for v in values if v is not None)
