"""`lifecycle run`: apply the rules and write the outputs."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..errors import OptionError
from ..jobs.guards import Guards, MaxMoves, parse_share
from ..jobs.nightly import run as run_rules
from ..render.tables import write_csv
from ..rules.load import load_rules
from . import common, render


class Table(str, Enum):
    customers = "customers"
    transitions = "transitions"
    ctas = "ctas"
    tasks = "tasks"


def register(app: typer.Typer) -> None:
    app.command(
        "run",
        epilog=common.examples(
            "lifecycle run --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --out out",
            "lifecycle run --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --state "
            "out/state --out out --quiet",
            "lifecycle run --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --out out "
            "--engine duckdb",
            "lifecycle run --customers sample_data/customers.csv --usage "
            "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 --out out "
            "--engine spark --spark-master local[2] --spark-conf spark.sql.shuffle.partitions=4",
        ),
    )(run)


@common.handle_errors
def run(
    customers: common.CustomersOpt,
    rules: common.RulesOpt,
    usage: common.UsageOpt = None,
    lookup: common.LookupOpt = None,
    attributes: common.AttributesOpt = None,
    sheet: common.SheetOpt = None,
    as_of: common.AsOfOpt = None,
    out: Annotated[Path | None, common.out_option("customers, transitions, ctas and tasks")] = None,
    fmt: common.FormatOpt = common.TableFormat.csv,
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
    engine: common.EngineOpt = "polars",
    spark_master: common.SparkMasterOpt = None,
    spark_conf: common.SparkConfOpt = None,
    state: common.StateOpt = None,
    rewind: Annotated[
        bool,
        typer.Option(
            "--rewind",
            help="With --state: allow an as-of date earlier than the state's latest; the "
            "state's later dates are dropped.",
        ),
    ] = False,
    prefer: common.PreferOpt = common.Prefer.export,
    max_moves: Annotated[
        str | None,
        typer.Option(
            "--max-moves",
            help="Write nothing and exit 1 if more customers would move: a number (500) or "
            "a share (5%).",
            show_default=False,
            metavar="N|N%",
        ),
    ] = None,
    max_shrink: Annotated[
        str,
        typer.Option(
            "--max-shrink",
            help="With --state: refuse a customers export with this share fewer rows than "
            "the last run's.",
            metavar="N%",
        ),
    ] = "10%",
    allow_shrink: Annotated[
        bool,
        typer.Option("--allow-shrink", help="With --state: accept an export that shrank."),
    ] = False,
    encoding: common.EncodingOpt = None,
    quiet: common.QuietOpt = False,
    summary_json: common.SummaryJsonOpt = None,
) -> None:
    """Apply the rules to the exports: update stages, create CTAs, write customers,
    transitions, ctas and tasks.

    The summary goes to standard error; data goes to files (--out) or standard output
    (--stdout). With --state, runs remember stages, history and CTAs (closing those
    whose stage the customer left), and a repeated as-of date replaces its records.
    """
    with common.summary_on_error(summary_json, as_of):
        if out is None and stdout is None and not dry_run:
            raise OptionError(
                "give --out DIR for the output files, --stdout TABLE for a pipe, or --dry-run"
            )
        if stdout is not None and summary_json == Path("-"):
            raise OptionError("--stdout and --summary-json - both want standard output; "
                              "give --summary-json a file")
        guards = Guards(
            max_moves=MaxMoves.parse(max_moves) if max_moves is not None else None,
            max_shrink=parse_share(max_shrink, "--max-shrink"),
            allow_shrink=allow_shrink,
        )
        choice = common.engine_choice(engine, spark_master, spark_conf)
        rule_set = load_rules(rules)
        with common.progress(not quiet) as step:
            done = run_rules(
                rule_set, customers, usage or [], as_of, rules_path=rules, state=state, out=out,
                fmt=fmt.value, dry_run=dry_run, rewind=rewind, prefer=prefer.value,
                guards=guards, encoding=encoding, progress=step,
                hash_inputs=summary_json is not None,
                command=common.command_line(), tables=common.tables(lookup, attributes, sheet),
                engine=choice,
            )
    if not dry_run and stdout is not None:
        common.write_to_stdout(lambda stream: write_csv(done.tables[stdout.value], stream))
    if summary_json is not None:
        common.write_json(summary_json, done.summary)
    render.run_summary(common.err, done, dry_run=dry_run, quiet=quiet)
