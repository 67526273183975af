"""Lookup tables: a key found in usage rows (a subscription id) mapped to its customer.

A lookup is read whole (it is small: one row per key) and checked: each key
once, so that a usage row can never count for two customers. A source whose
rows carry the key (``customer_id: {via: subscriptions}`` in the rules) is
joined with it on the stream, never collected: `lifecycle_cli.metrics.compute`
groups the rows by the key and joins each key's partial aggregates;
`lifecycle_cli.inputs.usage.Usage.attach` joins rows where a row needs its
customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..columns import ID, ROW
from ..errors import DataError, Problem
from ..rules.model import Rules
from ..suggest import did_you_mean
from .formats import ReadOptions, line_of_row, read_table, rows_text

_SHOWN = 5  # keys named in one message


@dataclass(frozen=True)
class LookupTable:
    """A lookup as read: its key (text) and its customer id, one row per key."""

    name: str
    path: Path
    key: str  # the key's column: in the lookup file and, under the rules' names, in the rows
    table: pl.DataFrame  # key (text), ID (the customers' id type)
    warnings: list[str] = field(default_factory=list)


def read_lookup(name: str, path: str | Path, rules: Rules, id_dtype: pl.DataType, *,
                encoding: str | None = None) -> LookupTable:
    """Read the lookup ``name`` of the rules from ``path``; raise :class:`DataError` for
    missing columns and for keys that repeat (naming their lines)."""
    path = Path(path)
    spec = rules.lookups[name]
    options = ReadOptions(encoding=encoding, sheet=spec.sheet, header_row=spec.header_row,
                          required=(spec.key, spec.customer_id), rules_key=("lookups", name))
    raw = read_table(path, options)
    missing = [(key, c) for key, c in (("key", spec.key), (ID, spec.customer_id))
               if c not in raw.columns]
    if missing:
        raise DataError([
            Problem(
                f"the lookup '{name}' has no column '{column}' (its {key})", file=str(path),
                line=options.header_line, column=column,
                hint=(did_you_mean(column, raw.columns) or "columns: " + ", ".join(
                    raw.columns[:20])) + f"; name it in the rules: "
                f"{options.rules_text(key, '...')}")
            for key, column in missing
        ])
    text = [pl.col(c).cast(pl.String).str.strip_chars() for c in (spec.key, spec.customer_id)]
    frame = raw.select(
        pl.when(text[0] != "").then(text[0]).alias(spec.key),
        pl.when(text[1] != "").then(text[1]).alias(ID),
    ).with_row_index(ROW)
    warnings = []
    blank_key = frame.filter(pl.col(spec.key).is_null())
    if blank_key.height:
        warnings.append(
            f"the lookup '{name}' ({path}) has {blank_key.height:,} row(s) without a "
            f"{spec.key}: "
            + rows_text(path, blank_key[ROW].to_list(), header_line=options.header_line)
            + "; they map nothing")
    frame = frame.filter(pl.col(spec.key).is_not_null())
    problems = _repeated_keys(frame, name, spec.key, path, options)
    if problems:
        raise DataError(problems)
    blank_customer = frame.filter(pl.col(ID).is_null()).height
    if blank_customer:
        warnings.append(
            f"the lookup '{name}' ({path}) has {blank_customer:,} key(s) without a "
            f"{spec.customer_id}: their usage rows count for no customer")
    table = frame.select(pl.col(spec.key), pl.col(ID).cast(id_dtype, strict=False))
    return LookupTable(name, path, spec.key, table, warnings)


def _repeated_keys(frame: pl.DataFrame, name: str, key: str, path: Path,
                   options: ReadOptions) -> list[Problem]:
    """A problem for keys that map to two customers, and one for keys that repeat."""
    if frame[key].n_unique() == frame.height:
        return []  # the usual case, checked cheaply
    repeated = (
        frame.group_by(key)
        .agg(pl.col(ROW).sort().alias("rows"), pl.col(ID).unique(maintain_order=True)
             .alias("customers"), pl.len())
        .filter(pl.col("len") > 1)
        .sort(pl.col("rows").list.first())
    )
    header = options.header_line

    def at(rows: list[int]) -> str:
        return rows_text(path, rows, limit=3, header_line=header)

    problems = []
    two = repeated.filter(pl.col("customers").list.len() > 1)
    if two.height:
        shown = "; ".join(
            f"'{k}' on {at(rows)} -> " + ", ".join(repr(c) for c in customers)
            for k, rows, customers in two.select(key, "rows", "customers").head(_SHOWN).iter_rows()
        )
        problems.append(Problem(
            f"the lookup '{name}' maps {two.height:,} {key}(s) to more than one customer: "
            + shown + (" ..." if two.height > _SHOWN else ""),
            file=str(path), line=line_of_row(path, two["rows"][0][0], header), column=key,
            hint="a usage row can count for one customer only: keep one row per "
            f"{key} in the lookup"))
    same = repeated.filter(pl.col("customers").list.len() == 1)
    if same.height:
        shown = "; ".join(f"'{k}' on {at(rows)}"
                          for k, rows in same.select(key, "rows").head(_SHOWN).iter_rows())
        problems.append(Problem(
            f"the lookup '{name}' has {same.height:,} {key}(s) more than once: " + shown
            + (" ..." if same.height > _SHOWN else ""),
            file=str(path), line=line_of_row(path, same["rows"][0][0], header), column=key,
            hint=f"remove the repeated rows: one row per {key}"))
    return sorted(problems, key=lambda p: p.line or 0)

