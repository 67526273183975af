"""The exports, read once: the customers eagerly, the usage lazily; then any number of days.

A run reads them for one day, a backfill for many, `diff` for two rule sets,
`explain` for a few customers; all through :func:`load`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ID, ROW
from ..errors import DataError, LifecycleError, OptionError, Problem
from ..expressions import kind_of
from ..inputs.attributes import join_attributes
from ..inputs.csvtext import codec_name
from ..inputs.customers import Customers, read_customers
from ..inputs.lookups import LookupTable, read_lookup
from ..inputs.usage import Usage, scan_usage, table_usage
from ..progress import Progress, no_progress
from ..rules.model import USAGE, Rules
from ..suggest import did_you_mean


@dataclass(frozen=True)
class Tables:
    """What the command line gives beside the customers export and the usage: lookup and
    attribute tables by name (``--lookup NAME=PATH``, ``--attributes NAME=PATH``), and the
    customers' sheet (``--sheet NAME``)."""

    lookups: Mapping[str, str | Path] = field(default_factory=dict)
    attributes: Mapping[str, str | Path] = field(default_factory=dict)
    sheet: str | None = None

    @property
    def paths(self) -> list[Path]:
        return [Path(p) for p in (*self.lookups.values(), *self.attributes.values())]


_NAMED = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)=(.+)$")


def named_paths(values: Sequence[str | Path] | Mapping[str, Sequence[str | Path]],
                default: str | None, option: str) -> dict[str, list[str | Path]]:
    """``NAME=PATH`` values by name. A value without a name (or a path that exists as
    written, '=' and all) belongs to ``default``; without a default it is an error."""
    if isinstance(values, Mapping):
        return {name: list(specs) for name, specs in values.items()}
    out: dict[str, list[str | Path]] = {}
    for value in values:
        found = _NAMED.match(value) if isinstance(value, str) else None
        if found and not Path(value).exists():
            out.setdefault(found.group(1), []).append(found.group(2))
        elif default is not None:
            out.setdefault(default, []).append(value)
        else:
            raise OptionError(Problem(
                f"{option} takes NAME=PATH, not '{value}'",
                hint=f"e.g. {option} subscriptions=exports/subscriptions.csv; NAME is the "
                "table's name in the rules"))
    return out


def one_path(values: Mapping[str, Sequence[str | Path]], option: str) -> dict[str, str | Path]:
    """One file per name (a lookup, an attribute table)."""
    out: dict[str, str | Path] = {}
    for name, specs in values.items():
        if len(specs) != 1:
            raise OptionError(Problem(f"{option} {name}=... is given {len(specs)} times",
                                      hint="give each table once"))
        out[name] = specs[0]
    return out


@dataclass
class Loaded:
    """The exports as read, before any as-of date comes in: read once, run for many days."""

    customers: Customers
    typed: pl.DataFrame  # the customers the days are for: all, or the selected ids
    sources: dict[str, Usage] = field(default_factory=dict)  # usage, by source name
    warnings: list[str] = field(default_factory=list)
    lookups: dict[str, LookupTable] = field(default_factory=dict)
    attributes: dict[str, Path] = field(default_factory=dict)  # attribute tables read

    @property
    def usage(self) -> Usage | None:
        """The source `usage` (a plain ``--usage PATH``), if given."""
        return self.sources.get(USAGE)

    @property
    def paths(self) -> list[Path]:
        """Every input file: the customers export, the usage files, the lookups, the
        attribute tables."""
        return [self.customers.path, *(p for u in self.sources.values() for p in u.paths),
                *(t.path for t in self.lookups.values()), *self.attributes.values()]

    @property
    def export_stages(self) -> pl.DataFrame:
        """ID, STAGE, ENTERED as the export gives them (remembered in the state)."""
        return self.typed.select(ID, "stage", "stage_entered_at")


def collector(problems: list[Problem] | None) -> Callable[[LifecycleError], None]:
    """Raise at once, or (for `validate`) keep the problems and go on."""

    def collect(error: LifecycleError) -> None:
        if problems is None:
            raise error
        problems.extend(error.problems)

    return collect


UsageSpecs = Sequence[str | Path] | Mapping[str, Sequence[str | Path]]
# the columns (names and types) of a table in an engine's catalog, for ``--usage table:NAME``
Catalog = Callable[[str], dict[str, pl.DataType]]
TABLE_PREFIX = "table:"


def catalog_table(specs: Sequence[str | Path]) -> str | None:
    """The catalog table a source's specs name (``table:db.events``), or None for files."""
    tables = [str(s)[len(TABLE_PREFIX):] for s in specs
              if isinstance(s, str) and s.startswith(TABLE_PREFIX) and not Path(s).exists()]
    if not tables:
        return None
    if len(tables) != len(specs) or len(tables) > 1 or not tables[0].strip():
        raise OptionError(Problem(
            "--usage: a source is one catalog table (table:db.events) or files, not both",
            hint="give each source once: --usage NAME=table:db.events"))
    return tables[0].strip()


def load(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: UsageSpecs = (),
    *,
    only_ids: Sequence[str] | None = None,
    problems: list[Problem] | None = None,
    encoding: str | None = None,
    progress: Progress = no_progress,
    keep_unknown_stages: bool = False,
    tables: Tables | None = None,
    catalog: Catalog | None = None,
) -> Loaded:
    """Read the customers export (and its attribute tables) and open the usage exports
    (lazily), each source with its lookup.

    ``usage_paths``: files, globs or folders; ``NAME=PATH`` (or a mapping name -> paths)
    for the named sources of the rules, a plain path for the source ``usage``.
    ``tables``: lookup and attribute tables, the customers' sheet.
    ``only_ids``: the days are for these customers only (`explain`); their usage rows
    only are read. ``problems``: collect problems instead of raising (`validate`).
    ``encoding`` names the text encoding of CSV exports (default UTF-8), e.g. ``cp1252``.
    ``keep_unknown_stages``: see `lifecycle_cli.inputs.customers.read_customers`.
    ``catalog``: the engine's catalog (`--engine spark`), for sources given as
    ``table:NAME``; without it such a source is an option error.
    """
    codec_name(encoding)  # an unknown encoding is an option error, before any reading
    tables = tables or Tables()
    collect = collector(problems)
    given = named_paths(usage_paths, USAGE, "--usage")
    unknown = unknown_names(rules, given, tables)
    if unknown:
        collect(OptionError([p for error in unknown for p in error.problems]))
    warnings: list[str] = []
    progress("reading customers")
    customers = read_customers(customers_path, rules, problems_out=problems, encoding=encoding,
                               keep_unknown_stages=keep_unknown_stages, sheet=tables.sheet)
    attributes = {n: Path(p) for n, p in tables.attributes.items() if n in rules.attributes}
    if attributes:
        progress("reading attribute tables")
        try:
            customers = join_attributes(customers, rules, attributes, encoding=encoding)
        except DataError as error:
            collect(error)
    warnings += customers.warnings
    typed = customers.typed
    if only_ids is not None:
        typed = select_ids(customers, only_ids)
    lookups: dict[str, LookupTable] = {}
    for name, path in tables.lookups.items():
        if name not in rules.lookups:
            continue
        try:
            lookups[name] = read_lookup(name, path, rules, customers.id_dtype, encoding=encoding)
            warnings += lookups[name].warnings
        except DataError as error:
            collect(error)
    sources: dict[str, Usage] = {}
    for name, specs in given.items():
        if name not in rules.usage_sources:
            continue
        via = rules.usage_source(name).customer_id
        lookup = None
        if via is not None:
            lookup = lookups.get(via.via)
            if lookup is None:
                if via.via not in tables.lookups:
                    collect(OptionError(rules.problem(
                        f"the source '{name}' reaches its customers through the lookup "
                        f"'{via.via}': give it with --lookup {via.via}=PATH",
                        "sources", name, "customer_id", "via", rule_id=name)))
                continue
        try:
            table = catalog_table(list(specs))
            if table is not None and catalog is None:
                raise OptionError(Problem(
                    f"--usage {'' if name == USAGE else name + '='}table:{table}: a catalog "
                    "table is read by `lifecycle run --engine spark`",
                    hint="add --engine spark to `lifecycle run`; the other commands "
                    "(backfill replays the usage itself) read usage files (docs/engines.md)"))
            if table is not None:
                assert catalog is not None
                sources[name] = table_usage(table, catalog(table), rules, customers.id_dtype,
                                            source=name, lookup=lookup)
            else:
                sources[name] = scan_usage(list(specs), rules, customers.id_dtype,
                                           encoding=encoding, source=name, lookup=lookup)
        except (DataError, OptionError) as error:
            collect(error)
            continue
        if only_ids is not None:
            sources[name].only = typed[ID]
    if not given and rules.metrics:
        warnings.append(
            f"no usage export given: every metric takes its default ({', '.join(rules.metrics)})"
        )
    elif rules.metrics:
        for name in rules.usage_sources:
            metrics = rules.metrics_of(name)
            if metrics and name not in given:
                warnings.append(
                    f"no usage given for the source '{name}' (--usage {name}=PATH): its "
                    f"metrics take their defaults ({', '.join(metrics)})")
    return Loaded(customers, typed, sources, warnings, lookups, attributes)


def unknown_names(rules: Rules, given: Mapping[str, object],
                   tables: Tables) -> list[LifecycleError]:
    """Names on the command line that the rules don't declare."""
    errors: list[LifecycleError] = []
    for option, names, declared, section, what in (
            ("--usage", given, list(rules.usage_sources), "sources", "source"),
            ("--lookup", tables.lookups, list(rules.lookups), "lookups", "lookup"),
            ("--attributes", tables.attributes, list(rules.attributes), "attributes",
             "attribute table")):
        for name in names:
            if name not in declared:
                known = ", ".join(declared) if declared else "none"
                errors.append(OptionError(Problem(
                    f"{option} {name}=...: the rules declare no {what} '{name}'",
                    file=getattr(rules.source, "file", None),
                    hint=(did_you_mean(name, declared) or f"{section} in the rules: {known}")
                    + f"; declare it under `{section}:`")))
    return errors


def select_ids(customers: Customers, ids: Sequence[str]) -> pl.DataFrame:
    """The customers with these ids (as text); an error naming the ids nobody has."""
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


def schema_of(rules: Rules, loaded: Loaded) -> dict[str, dict[str, str]]:
    """The exports' columns and their kinds, under the exports' own headers: "customers",
    "usage", then "source NAME" for each named source and "attributes NAME" for each
    attribute table (the guards compare them with the last run's)."""
    attribute_columns = loaded.customers.attribute_columns
    customers = {
        rules.customer_column(c): kind_of(t).value
        for c, t in loaded.customers.typed.schema.items()
        if c != ROW and c not in attribute_columns
    }
    out = {"customers": customers, "usage": {}}
    for name, usage in loaded.sources.items():
        source = rules.usage_source(name)
        out[schema_key("source", name)] = {
            source.columns.get(c, c): kind_of(t).value for c, t in usage.schema.items()}
    for name in loaded.attributes:
        table = rules.attributes[name]
        out[schema_key("attributes", name)] = {
            table.columns.get(c, c): kind_of(t).value
            for c, t in loaded.customers.typed.schema.items() if attribute_columns.get(c) == name}
    return out


def schema_key(kind: str, name: str) -> str:
    """The key of a table in :func:`schema_of`: "usage" for the source `usage`."""
    return "usage" if kind == "source" and name == USAGE else f"{kind} {name}"
