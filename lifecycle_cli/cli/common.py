"""Options shared by the commands, the consoles, and error rendering at the edge."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import EXIT_BAD_INPUT, LifecycleError, Problem
from ..files import write_text_atomic
from ..jobs.summary import error_summary

# Data goes to stdout; the human summary, progress and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"'{value}' is not a date; write YYYY-MM-DD") from None


RulesOpt = Annotated[
    Path, typer.Option("--rules", "-r", help="The rules file (YAML).", show_default=False)
]
CustomersOpt = Annotated[
    Path,
    typer.Option(
        "--customers",
        "-c",
        help="The customers export (.csv, .tsv, .csv.gz, .parquet, .xlsx).",
        show_default=False,
    ),
]
UsageOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--usage",
        "-u",
        help="Usage export: a file, a glob or a folder of Parquet files. Repeat for several.",
        show_default=False,
        metavar="PATH",
    ),
]
AsOfOpt = Annotated[
    dt.date | None,
    typer.Option(
        "--as-of",
        help="The day the run speaks for (YYYY-MM-DD). Default: today.",
        parser=parse_date,
        metavar="YYYY-MM-DD",
        show_default=False,
    ),
]

EncodingOpt = Annotated[
    str | None,
    typer.Option(
        "--encoding",
        help="Text encoding of CSV exports, e.g. cp1252 or latin-1 for Excel on Windows, "
        "utf-16. Default: UTF-8.",
        show_default=False,
        metavar="NAME",
    ),
]


StateOpt = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="Folder of the tool's memory between runs (created if needed): each as-of "
        "date's transitions, the stage table, a manifest per run.",
        show_default=False,
    ),
]


class TableFormat(str, Enum):
    """The file format of tables written to --out."""

    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"


FormatOpt = Annotated[
    TableFormat,
    typer.Option("--format", "-f", help="Output format (xlsx: one workbook, a sheet per table)."),
]


class Prefer(str, Enum):
    export = "export"
    state = "state"


PreferOpt = Annotated[
    Prefer,
    typer.Option(
        "--prefer",
        help="With --state, when the export's stage differs from the state's: which wins.",
    ),
]


def out_option(what: str) -> Any:
    """``--out DIR``, for a command whose files are ``what``."""
    return typer.Option("--out", "-o", help=f"Folder for {what} (created if needed).",
                        show_default=False)


QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No summary; only warnings and errors.")
]
SummaryJsonOpt = Annotated[
    Path | None,
    typer.Option(
        "--summary-json",
        help="Write a machine-readable summary (JSON) to this file ('-': standard output), "
        "also when the command fails.",
        show_default=False,
        metavar="FILE",
    ),
]


def write_json(target: Path, data: dict[str, Any]) -> None:
    """A JSON summary, to a file (atomically) or to standard output for '-'."""
    text = json.dumps(data, indent=2, default=str) + "\n"
    if target == Path("-"):
        write_to_stdout(lambda stream: stream.write(text.encode()))
        return
    write_text_atomic(target, text)


@contextmanager
def summary_on_error(target: Path | None, as_of: dt.date | None) -> Iterator[None]:
    """With --summary-json: a failed command still leaves its JSON summary, with the
    exit code and every problem."""
    started_at, started = dt.datetime.now(dt.UTC), time.monotonic()
    try:
        yield
    except LifecycleError as error:
        if target is not None:
            write_json(target,
                       error_summary(error, started_at, time.monotonic() - started, as_of))
        raise


def command_line() -> str:
    """The command as typed, for the state's lock note."""
    return " ".join(["lifecycle", *sys.argv[1:]])


def render_problems(problems: list[Problem], title: str) -> None:
    err.print(f"[bold red]error:[/] {escape(title)}")
    for p in problems:
        where = p.location()
        line = (
            f"  [bold]{escape(where)}[/]: {escape(p.message)}"
            if where
            else f"  {escape(p.message)}"
        )
        err.print(line)
        if p.hint:
            err.print(f"    [cyan]hint:[/] {escape(p.hint)}")


def fail(error: LifecycleError, *, writes: bool = True) -> typer.Exit:
    """Render a library error once and return the Exit carrying its code."""
    n = len(error.problems)
    kind = {
        "RulesError": "the rules",
        "DataError": "the data",
        "OutputError": "the outputs",
        "OptionError": "the options",
        "StateError": "the state",
    }.get(type(error).__name__, "the rules and the data")
    title = f"{n} problem{'s' if n != 1 else ''} with {kind}"
    if writes:
        title += "; nothing was written"
    render_problems(error.problems, title)
    return typer.Exit(error.exit_code)


def handle_errors(fn: F) -> F:
    """Turn library errors into a message and an exit code; no traceback for users' mistakes."""
    # the commands that write files
    writes = fn.__name__ in ("run", "sample", "backfill", "diff", "check", "ctas", "report") \
        or fn.__name__.startswith("ctas_")  # ctas close, snooze, ... record in the state

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LifecycleError as error:
            if STATE["debug"]:
                raise
            raise fail(error, writes=writes) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted; nothing was written[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit, typer.BadParameter):
            raise
        except Exception as error:  # a bug: say so plainly, traceback only with --debug
            if STATE["debug"]:
                raise
            err.print(
                f"[bold red]internal error:[/] {escape(type(error).__name__)}: {escape(str(error))}"
            )
            err.print(
                "  This is a bug in lifecycle, not in your data. Run again with --debug "
                "for the traceback and report it."
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner with the current step on stderr, only on a terminal."""
    if not enabled or not err.is_terminal:
        yield lambda _msg: None
        return
    with err.status("starting") as status:
        yield lambda msg: status.update(f"{msg} ...")


def write_to_stdout(write: Callable[[Any], None]) -> None:
    """Write bytes to standard output; a reader that stops early (`| head`) is not an error."""
    try:
        write(sys.stdout.buffer)
        sys.stdout.flush()
    except OSError as error:  # Polars reports a closed pipe as a plain OSError
        if isinstance(error, BrokenPipeError) or "Broken pipe" in str(error):
            # keep Python from complaining again when it flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        raise
