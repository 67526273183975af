"""Running the real `lifecycle` command: in this process, as most tests do, or as a process.

``lifecycle(...)`` invokes the Typer app in this process with Typer's ``CliRunner``: the
same command, options, exit codes and messages as the installed command, without starting
Python for every call. ``lifecycle_process(...)`` runs ``python -m lifecycle_cli`` in a new
process; keep it for tests where the process itself is under test (kill -9, pipes, the
exit status a shell sees).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.main
from rich.console import Console
from typer.testing import CliRunner

from lifecycle_cli.cli import app, common
from lifecycle_cli.errors import LifecycleError

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
RULES = ROOT / "rules" / "default.yaml"
AS_OF = "2026-11-01"  # the day the fixture in tests/data speaks for
FIXTURE = ["--customers", DATA / "customers.csv", "--usage", DATA / "usage.csv"]

# What the command sees in both ways of running it: a wide terminal that takes no colour.
ENV = {"COLUMNS": "120", "NO_COLOR": "1"}


def commands() -> dict[str, Any]:
    """The app's registered commands (Click commands) by name, for help and docs tests."""
    group: Any = typer.main.get_command(app)
    return dict(sorted(group.commands.items()))


def run_args(out: Path, *extra: str | Path, customers: Path = DATA / "customers.csv") -> list:
    """`lifecycle run` on the fixture with the default rules, writing into ``out``."""
    return [
        "run",
        "--customers",
        customers,
        "--usage",
        DATA / "usage.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--out",
        out,
        *extra,
    ]


@dataclass(frozen=True)
class Result:
    """What a finished command left: its exit code and what it wrote to each stream."""

    returncode: int
    stdout: str
    stderr: str


class _Runner(CliRunner):
    """Typer's runner, isolating what the command keeps in globals as a new process would."""

    @contextlib.contextmanager
    def isolation(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with super().isolation(*args, **kwargs) as streams:
            saved = dict(common.STATE), common.out, common.err
            # consoles made as cli/common.py makes them when a new process imports it: they
            # read COLUMNS and NO_COLOR now and write to the runner's streams, not a terminal
            common.out = Console(highlight=False, soft_wrap=True)
            common.err = Console(stderr=True, highlight=False, soft_wrap=True)
            common.STATE.update(debug=False)
            try:
                yield streams
            finally:
                state, common.out, common.err = saved
                common.STATE.clear()
                common.STATE.update(state)


def lifecycle(*args: str | Path, cwd: Path | None = None,
              env: dict[str, str] | None = None) -> Result:
    """``lifecycle ARGS`` in this process, as ``lifecycle_process`` would run it; ``env``
    adds to (or replaces some of) ``ENV``.

    An exception the command did not turn into a message and an exit code (a bug) is
    raised here, with its traceback, rather than read as exit 1.
    """
    argv = [str(a) for a in args]
    saved_cwd, saved_argv = Path.cwd(), sys.argv
    try:
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["lifecycle", *argv]  # the state's lock note names the command as typed
        result = _Runner(env={**ENV, **(env or {})}).invoke(app, argv, prog_name="lifecycle",
                                                          catch_exceptions=False)
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
    _raise_a_bug(result.exception, result.stderr)
    return Result(result.exit_code, result.stdout, result.stderr)


def _raise_a_bug(exception: BaseException | None, stderr: str) -> None:
    """Raise the exception behind an exit that was not the command's own decision.

    The command exits through SystemExit carrying a typer.Exit; what caused that Exit is
    a user's mistake (a LifecycleError, a usage error) or nothing. Anything else is a bug
    that `handle_errors` reported as "internal error" with exit 1.
    """
    cause = exception
    while isinstance(cause, (SystemExit, typer.Exit)):
        cause = cause.__context__
    if cause is None or isinstance(cause, (LifecycleError, typer.TyperException)):
        return
    raise AssertionError(f"the command failed on a bug:\n{stderr}") from cause


def lifecycle_process(*args: str | Path, cwd: Path | None = None,
                      env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m lifecycle_cli ARGS`` in a new process, as users run it."""
    return subprocess.run(
        [sys.executable, "-m", "lifecycle_cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **ENV, **(env or {})},
        timeout=120,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to show that nothing changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
