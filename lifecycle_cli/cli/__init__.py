"""The `lifecycle` command line: a thin face on the library.

Each command lives in its own module; this one assembles the Typer app.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from typer.core import TyperCommand

from ..version import __version__
from . import (
    backfill,
    backtest,
    check,
    common,
    completion,
    ctas,
    diff,
    explain,
    notify,
    report,
    run,
    sample,
    sql,
    validate,
)

app = typer.Typer(
    name="lifecycle",
    cls=common.Group,
    help="Move customers through lifecycle stages by rules, over your CRM and usage exports.",
    epilog=common.examples("lifecycle run --customers sample_data/customers.csv --usage "
                           "sample_data/usage.csv --rules rules/default.yaml --as-of 2026-11-01 "
                           "--out out"),
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,  # `lifecycle completion SHELL` prints the script instead
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lifecycle {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    common.STATE["debug"] = debug


for module in (run, backfill, backtest, validate, explain, diff, check, ctas, notify, report,
               sample, sql, completion):
    module.register(app)
for info in app.registered_commands:  # every command's shape: see common.Command
    if info.cls in (None, TyperCommand):
        info.cls = common.Command


def main() -> None:
    if os.environ.get(completion.COMPLETE_VAR):  # the shell asks what may come next
        from typer.completion import completion_init

        completion_init()
    app(prog_name=completion.PROG)
