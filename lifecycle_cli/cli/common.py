"""Options shared by the commands, the consoles, and error rendering at the edge."""

from __future__ import annotations

import calendar
import datetime as dt
import fnmatch
import functools
import inspect
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
)
from rich.progress import Progress as Bars
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

from ..errors import EXIT_BAD_INPUT, LifecycleError, OptionError, Problem
from ..files import write_text_atomic
from ..jobs.summary import error_summary
from ..suggest import did_you_mean

# Data goes to stdout; the human summary, progress and errors go to stderr.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

STATE: dict[str, Any] = {"debug": False, "command": None}

F = TypeVar("F", bound=Callable[..., Any])


def parse_date(value: str | None) -> dt.date | None:
    """A date option: YYYY-MM-DD; a day that does not exist says so (2026-11-31)."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    parts = re.fullmatch(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*", value)
    if parts is None:
        raise typer.BadParameter(f"'{value}' is not a date; write YYYY-MM-DD, e.g. 2026-11-30")
    year, month, day = map(int, parts.groups())
    if not 1 <= month <= 12:
        raise typer.BadParameter(f"'{value}' is not a date: there is no month {month} "
                                 "(YYYY-MM-DD: the month comes second)")
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        raise typer.BadParameter(f"'{value}' is not a date: {calendar.month_name[month]} "
                                 f"{year} has {last} days")
    return dt.date(year, month, day)  # 2026-1-5: the digits left out, nothing else wrong


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
        help="Usage export: a file, a glob or a folder of Parquet files; NAME=PATH for the "
        "rules' source NAME (sources:); with --engine spark, table:DB.TABLE for a table of "
        "Spark's catalog. Repeat for several.",
        show_default=False,
        metavar="[NAME=]PATH",
    ),
]
LookupOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lookup",
        help="A lookup table of the rules (lookups:), e.g. subscriptions=subscriptions.csv: "
        "maps a key in a source's rows to the customer. Repeat for several.",
        show_default=False,
        metavar="NAME=PATH",
    ),
]
AttributesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--attributes",
        help="A per-customer table of the rules (attributes:), e.g. owners=owners.xlsx: its "
        "columns join the customers by id. Repeat for several.",
        show_default=False,
        metavar="NAME=PATH",
    ),
]
SheetOpt = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="The sheet of an Excel customers export. Default: the rules' customers: sheet, "
        "else the first.",
        show_default=False,
        metavar="NAME",
    ),
]


def tables(lookup: list[str] | None, attributes: list[str] | None,
           sheet: str | None) -> Any:
    """--lookup, --attributes and --sheet as the library takes them (`day.load.Tables`)."""
    from ..day.load import Tables, named_paths, one_path

    return Tables(
        lookups=one_path(named_paths(lookup or [], None, "--lookup"), "--lookup"),
        attributes=one_path(named_paths(attributes or [], None, "--attributes"),
                            "--attributes"),
        sheet=sheet,
    )
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

# --engine spark's settings (docs/engines.md)
SparkMasterOpt = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="With --engine spark: where Spark runs: local[*] (every core here; the "
        "default), local[N], spark://HOST:PORT, yarn, k8s://... Under spark-submit or on "
        "Databricks, the cluster's.",
        show_default=False,
        metavar="URL",
    ),
]
SparkConfOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--spark-conf",
        help="With --engine spark: a Spark setting, e.g. spark.driver.memory=8g or a "
        "catalog's settings. Repeat for several.",
        show_default=False,
        metavar="KEY=VALUE",
    ),
]


def spark_settings(engine: str | None, master: str | None,
                   conf: list[str] | None) -> dict[str, Any]:
    """--spark-master and --spark-conf as `EngineChoice` fields; an error unless the
    engine is spark."""
    if engine != "spark" and (master is not None or conf):
        given = "--spark-master" if master is not None else "--spark-conf"
        raise OptionError(Problem(f"{given} applies to --engine spark",
                                  hint="add --engine spark, or leave it out"))
    if engine != "spark":
        return {}
    from ..sql.spark import parse_conf

    out: dict[str, Any] = {"spark_conf": parse_conf(conf)}
    if master is not None:
        out["spark_master"] = master
    return out


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


EngineOpt = Annotated[
    str,
    typer.Option(
        "--engine",
        help="What computes metrics, derived values and hops: polars (default), duckdb "
        "(pip install \"lifecycle-cli[duckdb]\"), spark (pip install "
        "\"lifecycle-cli[spark]\" and Java 17), or another registered engine. Every "
        "output is the same whichever runs.",
        metavar="polars|duckdb|spark",
    ),
]


def engine_choice(name: str, spark_master: str | None = None,
                  spark_conf: list[str] | None = None) -> Any:
    """The ``--engine`` given, as the library's EngineChoice (OptionError for a name no
    engine registered), with ``--spark-master`` and ``--spark-conf`` for spark."""
    from ..sql.backend import EngineChoice, names

    known = names()
    if name not in known:
        raise OptionError(Problem(f"--engine {name}: no such engine",
                                  hint=did_you_mean(name, known) or "engines: " + ", ".join(known)))
    return EngineChoice(name, **spark_settings(name, spark_master, spark_conf))


def out_option(what: str) -> Any:
    """``--out DIR``, for a command whose files are ``what``."""
    return typer.Option("--out", "-o", help=f"Folder for {what} (created if needed).",
                        show_default=False)


QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No summary; only warnings and errors.")
]
# the commands that print tables (report, backtest)
TablesQuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No terminal tables or summary; write the "
                       "files only. Warnings still go to standard error.")
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
            summary = error_summary(error, started_at, time.monotonic() - started, as_of)
            write_json(target, {"command": STATE.get("command"), **summary})
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
    }.get(type(error).__name__) or _what_the_problems_are_in(error.problems)
    title = f"{n} problem{'s' if n != 1 else ''} with {kind}"
    if writes:
        title += "; nothing was written"
    render_problems(error.problems, title)
    return typer.Exit(error.exit_code)


def _what_the_problems_are_in(problems: list[Problem]) -> str:
    """For problems collected from the rules and the data together (`validate` with
    data): a problem located in the rules file has a key path or a rule."""
    in_rules = {bool(p.path or p.rule_id) for p in problems}
    return {frozenset({True}): "the rules", frozenset({False}): "the data"}.get(
        frozenset(in_rules), "the rules and the data")


def handle_errors(fn: F) -> F:
    """Turn library errors into a message and an exit code; no traceback for users' mistakes."""
    # the commands that write files
    writes = fn.__name__ in ("run", "sample", "backfill", "diff", "check", "ctas", "report",
                             "notify") \
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


class _Counts(ProgressColumn):
    """``12/31 days  0:00:04  ETA 0:00:09`` for a step that counts; the time spent for one
    that does not."""

    def render(self, task: Task) -> Text:
        spent = str(dt.timedelta(seconds=int(task.elapsed or 0)))
        if task.total is None:
            return Text(spent)
        unit = task.fields.get("unit", "")
        text = f"{int(task.completed):,}/{int(task.total):,} {unit}".rstrip() + f"  {spent}"
        remaining = task.time_remaining
        if remaining is not None and task.completed < task.total:
            text += f"  ETA {dt.timedelta(seconds=round(remaining))}"
        return Text(text)


class _Steps:
    """The library's progress callback (``lifecycle_cli.progress.Progress``) drawn as one
    line on stderr: the step, a bar and counts with an ETA when the step counts (days of a
    backfill, rows written), the time spent."""

    def __init__(self, bars: Bars) -> None:
        self.bars = bars
        self.step: str | None = None
        self.task: Any = None

    def __call__(self, step: str, done: int | None = None, total: int | None = None,
                 unit: str = "") -> None:
        if step != self.step:
            if self.task is not None:
                self.bars.remove_task(self.task)
            self.step = step
            self.task = self.bars.add_task(step, total=total, completed=done or 0, unit=unit)
        else:
            self.bars.update(self.task, total=total, completed=done or 0)


@contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[..., None]]:
    """Progress on stderr while a library call runs: only on a terminal, never with
    --quiet or on a pipe; gone when the call returns (the summary follows)."""
    if not enabled or not err.is_terminal:
        yield lambda *_args, **_kwargs: None
        return
    bars = Bars(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30),
                _Counts(), console=err, transient=True)
    with bars:
        yield _Steps(bars)


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


# -- the commands' shape: help text, switches, examples -------------------------------------

def reflow(text: str | None) -> str | None:
    """Help text as paragraphs for the help formatter to fill at the terminal's width: the
    line breaks of a docstring are joined (kept, they break sentences in a narrow or wide
    terminal); indented lines and lines that end in a shell continuation stay as written."""
    if not text:
        return text
    paragraphs = []
    for paragraph in inspect.cleandoc(text).split("\n\n"):
        lines = paragraph.split("\n")
        keep = any(line.startswith(" ") or line.rstrip().endswith("\\") for line in lines)
        paragraphs.append(paragraph if keep else " ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def examples(*commands: str, width: int = 72) -> str:
    """The epilog of a command's ``--help``: its examples, each folded with shell line
    continuations to fit an 80-column terminal, so that a copied example runs as it is.
    A command that is not lifecycle's (``mkdir -p out``) is shown as it is."""
    out = ["Example:" if len(commands) == 1 else "Examples:"]
    for command in commands:
        words = re.findall(r"(?:'[^']*'|\"[^\"]*\"|\S)+", command)
        chunks: list[str] = []  # an option with its value stays on one line
        for word in words:
            if chunks and not word.startswith("-") and chunks[-1].startswith("-") \
                    and " " not in chunks[-1]:
                chunks[-1] += " " + word
            else:
                chunks.append(word)
        lines = [chunks[0]]
        for chunk in chunks[1:]:
            if len(lines[-1]) + len(chunk) + 3 <= width or not command.startswith("lifecycle"):
                lines[-1] += " " + chunk
            else:
                lines.append("    " + chunk)
        # \b: click keeps the block's lines as they are
        out.append("\b\n" + " \\\n".join("  " + line for line in lines))
    return "\n\n".join(out)


def example_commands(epilog: str | None) -> list[str]:
    """The commands of an epilog that `examples` wrote, each on one line again."""
    paragraphs = (epilog or "").split("\n\n")[1:]
    return [" ".join(p.replace("\b", "").replace("\\\n", " ").split()) for p in paragraphs]


_BOOLEAN_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _shape_params(params: Sequence[Any]) -> None:
    """Every on/off option a switch with its opposite (``--dry-run/--no-dry-run``), shown
    without a value placeholder; actions such as --help and --version stay as they are."""
    for param in params:
        if not getattr(param, "is_bool_flag", False):
            continue
        param.metavar = ""  # Typer's help would show <bool>, as if it took a value
        if not param.secondary_opts and not param.is_eager:
            param.secondary_opts = [f"--no-{opt[2:]}" for opt in param.opts
                                    if opt.startswith("--")]
            param.show_default = bool(param.default)  # off unless the help says otherwise


def _switch_given_a_value(params: Sequence[Any], args: Sequence[str]) -> tuple[str, str] | None:
    """(switch, word) for ``--dry-run true``: a switch followed by a yes/no word."""
    switches = {opt for p in params if getattr(p, "is_bool_flag", False)
                for opt in (*p.opts, *p.secondary_opts)}
    for switch, word in zip(args, args[1:], strict=False):
        if switch in switches and word.lower() in _BOOLEAN_WORDS:
            return switch, word
    return None


def _refuse_summary_over_inputs(ctx: Any) -> None:
    """``--summary-json FILE`` naming a file another option names (an export, the rules),
    or a file a usage option takes in (inside its folder, matched by its glob), is refused
    before anything runs: a failed run writes its summary too, and would replace it."""
    target = ctx.params.get("summary_json")
    if target is None or target == Path("-"):
        return
    for param in ctx.command.params:
        if param.name == "summary_json":
            continue
        values = ctx.params.get(param.name)
        for value in values if isinstance(values, list | tuple) else [values]:
            if isinstance(value, Path):
                clash = _same_file(Path(target), value)
            elif isinstance(value, str) and "PATH" in (param.metavar or ""):
                # a file, a folder or a glob of exports; NAME=PATH names a source
                text = value.split("=", 1)[1] if "=" in value and not Path(value).exists() \
                    else value
                clash = _taken_in(Path(target), text)
            else:
                continue
            if clash:
                raise typer.BadParameter(
                    f"'{target}' is also given to {param.opts[0]}: the summary needs a file "
                    "of its own (a failed run writes it too, over that file)",
                    ctx=ctx, param_hint="'--summary-json'")


def _same_file(target: Path, given: Path) -> bool:
    try:
        return target.resolve() == given.resolve() or (
            target.exists() and given.exists() and os.path.samefile(target, given))
    except OSError:
        return False


def _taken_in(target: Path, given: str) -> bool:
    """Whether ``given`` (a file, a folder or a glob of exports) takes in ``target``."""
    if any(ch in given for ch in "*?["):
        return fnmatch.fnmatch(str(target.absolute()), str(Path(given).absolute()))
    if Path(given).is_dir():
        return Path(given).resolve() in target.resolve().parents
    return _same_file(target, Path(given))


class Command(TyperCommand):
    """Every command: help text that wraps at the terminal's width, on/off options as
    switches, a switch given a value told so, --summary-json never over an input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)
        self.epilog = reflow(self.epilog)
        _shape_params(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _shape_params([option] if option is not None else [])
        return option

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        given = _switch_given_a_value(self.params, args)
        # a command that takes arguments (customer ids) may be given "1" after a switch
        if given and not any(p.param_type_name == "argument" for p in self.params):
            switch, word = given
            positive = switch.replace("--no-", "--", 1)
            raise typer.BadParameter(
                f"'{word}': a switch takes no value. Write {positive} alone to turn it on; "
                f"leave it out, or write --no-{positive[2:]}, to turn it off",
                ctx=ctx, param_hint=switch)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        _refuse_summary_over_inputs(ctx)
        STATE["command"] = self.name  # for the summary of a failed command
        return super().invoke(ctx)


class Group(TyperGroup):
    """The `lifecycle` command itself, shaped as its commands are; its list of commands
    gives each one's first paragraph whole, wrapped, not cut at the width with "..."."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)
        _shape_params(self.params)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                summary = command.short_help or (reflow(command.help) or "").split("\n\n")[0]
                rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _shape_params([option] if option is not None else [])
        return option
