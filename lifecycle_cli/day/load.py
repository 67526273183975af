"""The exports, read once: the customers eagerly, the usage lazily; then any number of days.

A run reads them for one day, a backfill for many, `diff` for two rule sets,
`explain` for a few customers; all through :func:`load`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ID, ROW
from ..errors import DataError, LifecycleError, Problem
from ..expressions import kind_of
from ..inputs.csvtext import codec_name
from ..inputs.customers import Customers, read_customers
from ..inputs.usage import Usage, scan_usage
from ..progress import Progress, no_progress
from ..rules.model import Rules
from ..suggest import did_you_mean


@dataclass
class Loaded:
    """The exports as read, before any as-of date comes in: read once, run for many days."""

    customers: Customers
    typed: pl.DataFrame  # the customers the days are for: all, or the selected ids
    usage: Usage | None
    warnings: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        """Every input file: the customers export, then the usage files."""
        return [self.customers.path, *(self.usage.paths if self.usage else [])]

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


def load(
    rules: Rules,
    customers_path: str | Path,
    usage_paths: Sequence[str | Path] = (),
    *,
    only_ids: Sequence[str] | None = None,
    problems: list[Problem] | None = None,
    encoding: str | None = None,
    progress: Progress = no_progress,
    keep_unknown_stages: bool = False,
) -> Loaded:
    """Read the customers export and open the usage exports (lazily).

    ``only_ids``: the days are for these customers only (`explain`); their usage rows
    only are read. ``problems``: collect problems instead of raising (`validate`).
    ``encoding`` names the text encoding of CSV exports (default UTF-8), e.g. ``cp1252``.
    ``keep_unknown_stages``: see `lifecycle_cli.inputs.customers.read_customers`.
    """
    codec_name(encoding)  # an unknown encoding is an option error, before any reading
    collect = collector(problems)
    warnings: list[str] = []
    progress("reading customers")
    customers = read_customers(customers_path, rules, problems_out=problems, encoding=encoding,
                               keep_unknown_stages=keep_unknown_stages)
    warnings += customers.warnings
    typed = customers.typed
    if only_ids is not None:
        typed = select_ids(customers, only_ids)
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
