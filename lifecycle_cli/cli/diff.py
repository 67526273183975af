"""`lifecycle diff`: two rule sets on the same data, who lands elsewhere, by which rule, and why."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import EXIT_CHECK_FAILED, OptionError, RulesError
from ..jobs.diff import DIFF_COLUMNS
from ..jobs.diff import diff as diff_rules
from ..render.tables import write_csv, write_tables
from ..rules.load import load_rules
from ..rules.model import Rules
from . import common, render


def register(app: typer.Typer) -> None:
    app.command(
        "diff",
        epilog=common.examples(
            "mkdir -p out && cp rules/default.yaml out/draft.yaml",
            "lifecycle diff --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --rules out/draft.yaml --as-of "
            "2026-11-01 --out out/diff",
        ),
    )(diff)


@common.handle_errors
def diff(
    customers: common.CustomersOpt,
    rules: Annotated[
        list[Path],
        typer.Option(
            "--rules",
            "-r",
            help="The rules file (YAML): give it twice, the old file first, then the new one.",
            show_default=False,
            metavar="PATH",
        ),
    ],
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    out: Annotated[Path | None, common.out_option("the diff table")] = None,
    fmt: common.FormatOpt = common.TableFormat.csv,
    stdout: Annotated[
        bool,
        typer.Option("--stdout", help="Write the diff table to standard output as CSV."),
    ] = False,
    encoding: common.EncodingOpt = None,
    fail_on_change: Annotated[
        bool,
        typer.Option(
            "--fail-on-change",
            help=f"Exit with {EXIT_CHECK_FAILED} when any customer lands elsewhere or moves "
            "by other rules.",
        ),
    ] = False,
) -> None:
    """Run two rule sets on the same exports and as-of date, and show which customers
    land in another stage or move by other rules, and why.

    The summary goes to standard error. The table (one row per customer that differs)
    goes to --out DIR as diff.csv, diff.parquet or diff.xlsx, or with --stdout to
    standard output.
    """
    if len(rules) != 2:
        raise OptionError(
            f"give --rules exactly twice, the old rules file and then the new one "
            f"(got {len(rules)})"
        )
    old_rules, new_rules = _load_both(rules[0], rules[1])
    with common.progress() as step:
        result = diff_rules(old_rules, new_rules, customers, usage or [], as_of,
                            encoding=encoding, progress=step,
                            tables=common.tables(lookup, attributes, sheet))
        written: list[str] = []
        if out is not None:
            step("writing the diff")
            paths = write_tables(
                result.tables,
                out,
                fmt.value,
                inputs=[*result.old.input_paths, *rules],
                created=result.as_of,
                text_columns=[result.id_column, *DIFF_COLUMNS],
                workbook_name="diff.xlsx",
            )
            written = [str(p) for p in paths]
    if stdout:
        common.write_to_stdout(lambda stream: write_csv(result.table, stream))
    render.diff_summary(common.err, result, str(rules[0]), str(rules[1]), written)
    if fail_on_change and result.table.height:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _load_both(old: Path, new: Path) -> tuple[Rules, Rules]:
    """Both rules files, or every problem in either of them at once."""
    loaded: list[Rules] = []
    problems = []
    for path in (old, new):
        try:
            loaded.append(load_rules(path))
        except RulesError as error:
            problems += error.problems
    if problems:
        raise RulesError(problems)
    return loaded[0], loaded[1]
