"""Attribute tables: per-customer tables (an owner sheet, the latest NPS, contract terms)
joined by customer id into the customers the rules see.

Each table has its own ``columns`` mapping under ``attributes:`` in the
rules. Its columns become customer columns for the rules, the CTAs' owners,
`check` and reports; a customer the table does not list gets NULLs. A
column that the customers export has too is an error unless ``wins:`` says
which side keeps it. The customers *output* keeps the export's own columns
only (SPEC: every input column, values unchanged): attribute columns are
not appended to it, so yesterday's output stays a valid export for today.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from ..columns import ENTERED, ID, ROW, STAGE
from ..errors import DataError, Problem
from ..rules.model import Rules
from ..suggest import did_you_mean
from .customers import Customers, typed_columns
from .formats import ReadOptions, line_of_row, read_table, rows_text
from .mapping import rename_map, shadowed

_SHOWN = 5


def join_attributes(customers: Customers, rules: Rules, tables: Mapping[str, str | Path], *,
                    encoding: str | None = None) -> Customers:
    """``customers`` with the columns of each attribute table in ``tables`` (name -> file)
    joined into ``typed``; raise :class:`DataError` listing every problem of every table."""
    problems: list[Problem] = []
    warnings: list[str] = []
    typed = customers.typed
    origin: dict[str, str] = {}  # attribute column -> its table
    for name, file in tables.items():
        try:
            table, table_warnings = _read(name, Path(file), rules, customers, encoding)
        except DataError as err:
            problems += err.problems
            continue
        warnings += table_warnings
        spec = rules.attributes[name]
        path = Path(file)
        columns = [c for c in table.columns if c not in (ID, ROW)]
        for column in columns:
            if column in origin:
                problems.append(Problem(
                    f"the attribute tables '{origin[column]}' and '{name}' both have the "
                    f"column '{column}'", file=str(path), column=column,
                    hint=f"rename one: attributes: {{{name}: {{columns: "
                    f"{{{name}_{column}: {column}}}}}}}"))
                continue
            if column not in typed.columns:
                origin[column] = name
                continue
            winner = spec.winner(column)
            if column in (STAGE, ENTERED) and winner != "customers":
                problems.append(Problem(
                    f"the attribute table '{name}' has the column '{column}', which comes "
                    "from the customers export", file=str(path), column=column,
                    hint=f"rename it: attributes: {{{name}: {{columns: "
                    f"{{{name}_{column}: {column}}}}}}}, or say wins: {{{column}: customers}}"))
            elif winner is None:
                problems.append(rules.problem(
                    f"the column '{column}' is in both the customers export and the attribute "
                    f"table '{name}' ({path})", "attributes", name, rule_id=name, column=column,
                    hint=f"say which one the rules read: wins: {{{column}: attributes}} (or "
                    f"customers); or rename it: columns: {{{name}_{column}: {column}}}"))
            elif winner == "customers":
                table = table.drop(column)
            else:
                typed = typed.drop(column)
                origin[column] = name
        said = spec.wins if isinstance(spec.wins, dict) else {}
        for column in said:
            if column not in columns or column not in customers.typed.columns:
                warnings.append(
                    f"attributes: {name}: wins names '{column}', which is not a column of both "
                    f"the customers export and {path}")
        typed = typed.join(table.drop(ROW), on=ID, how="left", maintain_order="left")
    if problems:
        raise DataError(problems)
    return Customers(
        path=customers.path, raw=customers.raw, typed=typed, external=customers.external,
        warnings=[*customers.warnings, *warnings], header_line=customers.header_line,
        attribute_columns={**customers.attribute_columns, **origin})


def _read(name: str, path: Path, rules: Rules, customers: Customers,
          encoding: str | None) -> tuple[pl.DataFrame, list[str]]:
    """One attribute table under the rules' names, typed, one row per customer id."""
    spec = rules.attributes[name]
    external_id = spec.columns.get(ID, ID)
    options = ReadOptions(encoding=encoding, sheet=spec.sheet, header_row=spec.header_row,
                          required=(external_id,), rules_key=("attributes", name))
    raw = read_table(path, options)
    hl = options.header_line
    if external_id not in raw.columns:
        raise DataError(Problem(
            f"the attribute table '{name}' has no customer id column '{external_id}'",
            file=str(path), line=hl, column=external_id,
            hint=(did_you_mean(external_id, raw.columns) or "columns: " + ", ".join(
                raw.columns[:20])) + f"; map it in the rules: "
            f"{options.rules_text('columns', '{customer_id: ...}')}"))
    rename = rename_map(raw.columns, spec.columns, path, rules, ("attributes", name, "columns"),
                        required=(ID,))
    frame = raw.drop(shadowed(raw.columns, spec.columns, rename)).rename(rename)
    typed, problems, warnings = typed_columns(frame, rules, path, rename, {ID}, hl)
    warnings = [f"attributes '{name}': {w}" for w in warnings]
    ids = pl.col(ID).cast(pl.String).str.strip_chars()
    blank = typed.filter(ids.is_null() | (ids == ""))
    if blank.height:
        warnings.append(
            f"the attribute table '{name}' ({path}) has {blank.height:,} row(s) without a "
            f"customer id ({rows_text(path, blank[ROW].to_list(), header_line=hl)}); they "
            "are ignored")
    typed = typed.filter(ids.is_not_null() & (ids != "")).with_columns(
        ids.cast(customers.id_dtype, strict=False).alias("__id"))
    if typed.height == 0:
        warnings.append(f"the attribute table '{name}' ({path}) has no rows: every customer "
                        "gets NULL in its columns")
    repeated = _repeated(typed.filter(pl.col("__id").is_not_null()), name, path, external_id,
                         hl)
    if repeated is not None:
        problems.append(repeated)
    if problems:
        raise DataError(problems)
    known = typed.join(customers.typed.select(pl.col(ID).alias("__id")), on="__id", how="semi")
    strangers = typed.join(known.select(ROW), on=ROW, how="anti")
    if strangers.height:
        shown = ", ".join(
            f"{cid!r} ({line})" for cid, line in zip(
                strangers[ID].head(_SHOWN).to_list(),
                [rows_text(path, [r], header_line=hl) for r in strangers[ROW].head(_SHOWN)],
                strict=True))
        warnings.append(
            f"{strangers.height:,} id(s) of the attribute table '{name}' ({path}) are not "
            f"customers: {shown}" + (" ..." if strangers.height > _SHOWN else ""))
    return known.drop(ID).rename({"__id": ID}).select(ID, pl.exclude(ID)), warnings


def _repeated(typed: pl.DataFrame, name: str, path: Path, column: str,
              header_line: int) -> Problem | None:
    """A problem naming the ids that the table lists more than once, with their lines."""
    if typed["__id"].n_unique() == typed.height:
        return None
    dupes = (typed.group_by("__id").agg(pl.col(ROW).sort().alias("rows"), pl.len())
             .filter(pl.col("len") > 1).sort(pl.col("rows").list.first()))
    shown = "; ".join(f"{cid!r} on {rows_text(path, rows, limit=3, header_line=header_line)}"
                      for cid, rows in dupes.select("__id", "rows").head(_SHOWN).iter_rows())
    return Problem(
        f"the attribute table '{name}' lists {dupes.height:,} customer id(s) more than once: "
        + shown + (" ..." if dupes.height > _SHOWN else ""),
        file=str(path), line=line_of_row(path, dupes["rows"][0][0], header_line),
        column=column, hint="keep one row per customer: which row should the rules read?")
