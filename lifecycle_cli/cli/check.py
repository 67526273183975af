"""`lifecycle check`: compliance findings, a table and a summary; exit 3 to fail a cron job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..compliance import findings
from ..compliance.run import check as check_exports
from ..compliance.run import parse_fail_on
from ..errors import EXIT_CHECK_FAILED, OptionError
from ..render.tables import write_csv, write_tables
from ..rules.load import load_rules
from . import common, render


def register(app: typer.Typer) -> None:
    app.command(
        "check",
        epilog=common.examples(
            "lifecycle check --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --out "
            "out/findings --fail-on stuck,unknown_stage",
            "lifecycle check --customers sample_data/customers.csv --rules "
            "rules/default.yaml --as-of 2026-11-01 --by segment --stdout",
        ),
    )(check)


@common.handle_errors
def check(
    customers: common.CustomersOpt,
    rules: common.RulesOpt,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    out: Annotated[Path | None, common.out_option("the findings table")] = None,
    fmt: common.FormatOpt = common.TableFormat.csv,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Write the findings table to standard output as CSV.")
    ] = False,
    fail_on: Annotated[
        str | None,
        typer.Option(
            "--fail-on",
            help=f"Exit with {EXIT_CHECK_FAILED} when any of these findings is present: a comma "
            f"list of {', '.join(findings.names())}; or any, or none. Default: the rules' "
            "compliance: fail_on.",
            show_default=False,
            metavar="KIND,...",
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            "--state",
            help="A state folder of `lifecycle run --state`: start from its stages, report "
            "stages changed by hand in the export, and its CTAs. Only read; never locked.",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        dt.date | None,
        typer.Option(
            "--from",
            help="With --state: also report the skipped stages and hand changes that the "
            "state recorded from this date on. Default: the as-of date only.",
            parser=common.parse_date,
            show_default=False,
            metavar="YYYY-MM-DD",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Count the findings per value of this customer column (segment, plan, a "
            "metric ...): a column per group in the summary, and the column first in the "
            "findings table.",
            show_default=False,
            metavar="COLUMN",
        ),
    ] = None,
    prefer: common.PreferOpt = common.Prefer.export,
    encoding: common.EncodingOpt = None,
    quiet: common.QuietOpt = False,
    summary_json: common.SummaryJsonOpt = None,
) -> None:
    """Compliance: who is overdue, stuck, mis-staged or missing data.

    Applies the rules for the as-of date in memory (nothing is recorded), then lists the
    findings: unknown stages and stages entered in the future (from the stages the day
    starts with), stuck, overdue, no owner, no renewal date, no usage (after the day's
    moves), skipped stages, hand changes (with --state) and past-due CTAs. The summary goes
    to standard error; the table to --out DIR (findings.csv, .parquet or .xlsx) or --stdout.
    """
    with common.summary_on_error(summary_json, as_of):
        kinds = parse_fail_on(fail_on) if fail_on is not None else None
        if since is not None and state is None:
            raise OptionError("--from needs --state: the earlier days' moves are in the state")
        if since is not None and since > (as_of or dt.date.today()):
            raise OptionError(f"--from {since} is after the as-of date")
        if stdout and summary_json == Path("-"):
            raise OptionError("--stdout and --summary-json - both want standard output; "
                              "give --summary-json a file")
        rule_set = load_rules(rules)
        with common.progress(not quiet) as step:
            result = check_exports(rule_set, customers, usage or [], as_of, state_dir=state,
                                   since=since, prefer=prefer.value, encoding=encoding,
                                   progress=step, tables=common.tables(lookup, attributes, sheet),
                                   by=by)
            written: list[Path] = []
            if out is not None:
                step("writing the findings")
                written = write_tables(
                    result.tables, out, fmt.value, inputs=[*result.input_paths, rules],
                    created=result.as_of,
                    text_columns=["customer_id", *([result.by] if result.by else [])],
                    workbook_name="findings.xlsx")
    fail = kinds if kinds is not None else result.settings.fail_on
    if stdout:
        common.write_to_stdout(lambda stream: write_csv(result.findings, stream))
    if summary_json is not None:
        common.write_json(summary_json, result.summary(fail, rules_path=rules, written=written))
    render.check_summary(common.err, result, fail, written, quiet=quiet)
    if result.failed(fail):
        raise typer.Exit(EXIT_CHECK_FAILED)
