"""`lifecycle run`: apply the rules and write the outputs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError
from ..outputs import write_csv, write_tables
from ..rules import load_rules
from ..run import run as run_rules
from . import common, render


class Format(str, Enum):
    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"


class Table(str, Enum):
    customers = "customers"
    transitions = "transitions"


def register(app: typer.Typer) -> None:
    app.command(
        "run",
        epilog="Example:\n\n  lifecycle run --customers sample_data/customers.csv "
        "--usage sample_data/usage.csv --rules rules/default.yaml --out out",
    )(run)


@common.handle_errors
def run(
    customers: common.CustomersOpt,
    rules: common.RulesOpt,
    usage: common.UsageOpt = None,
    as_of: common.AsOfOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for customers, transitions (created if needed).",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.csv,
    stdout: Annotated[
        Table | None,
        typer.Option(
            "--stdout",
            help="Also write this table to standard output as CSV, for a pipe.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the summary; write nothing.")
    ] = False,
    encoding: common.EncodingOpt = None,
) -> None:
    """Apply the rules to the exports: update stages, write customers and transitions.

    The summary goes to standard error; data goes to files (--out) or standard output
    (--stdout).
    """
    if out is None and stdout is None and not dry_run:
        raise OptionError(
            "give --out DIR for the output files, --stdout TABLE for a pipe, or --dry-run"
        )
    rule_set = load_rules(rules)
    with common.progress() as step:
        result = run_rules(
            rule_set, customers, usage or [], as_of, encoding=encoding, progress=step
        )
        written: list[str] = []
        if not dry_run and out is not None:
            step("writing outputs")
            paths = write_tables(
                result.tables,
                out,
                fmt.value,
                inputs=result.input_paths,
                created=result.as_of,
                text_columns=[result.id_column, "customer_id"],
            )
            written = [str(p) for p in paths]
    if not dry_run and stdout is not None:
        common.write_to_stdout(lambda stream: write_csv(result.tables[stdout.value], stream))
    render.run_summary(common.err, result, written, dry_run=dry_run)
