"""The `lifecycle` command line: a thin face on the library.

Each command lives in its own module; this one assembles the Typer app.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ..version import __version__
from . import backfill, check, common, ctas, diff, explain, report, run, sample, validate

app = typer.Typer(
    name="lifecycle",
    help="Move customers through lifecycle stages by rules, over your CRM and usage exports.\n\n"
    "Example: lifecycle run --customers sample_data/customers.csv --usage sample_data/usage.csv "
    "--rules rules/default.yaml --out out",
    no_args_is_help=True,
    add_completion=False,
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


for module in (run, backfill, validate, explain, diff, check, ctas, report, sample):
    module.register(app)


def main() -> None:
    app()
