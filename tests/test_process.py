"""`python -m lifecycle_cli` as a process: the exit status a shell or cron sees, one per code.

The other CLI tests run the command in the test's process (`cli_util.lifecycle`); each
test here also checks that doing so gives the same streams as the process.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from cli_util import AS_OF, DATA, ENV, FIXTURE, RULES, lifecycle, lifecycle_process, run_args

from lifecycle_cli.version import __version__


def same_as_in_process(*args: str | Path) -> tuple[int, str, str]:
    """The process's exit code and streams, once they are shown to equal the in-process run's.

    The process calls itself `python -m lifecycle_cli` in usage messages; the installed
    command (and the in-process run) calls itself `lifecycle`.
    """
    proc = lifecycle_process(*args)
    inside = lifecycle(*args)
    shown = [s.replace("python -m lifecycle_cli", "lifecycle") for s in (proc.stdout,
                                                                         proc.stderr)]
    assert (proc.returncode, *shown) == (inside.returncode, inside.stdout, inside.stderr)
    return proc.returncode, *shown


def test_version() -> None:
    proc = lifecycle_process("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"lifecycle {__version__}\n"


def test_exit_0_a_run_with_a_table_on_stdout(tmp_path: Path) -> None:
    code, stdout, stderr = same_as_in_process(*run_args(tmp_path, "--stdout", "transitions"))
    assert code == 0, stderr
    assert stdout == (tmp_path / "transitions.csv").read_text()
    assert "Moves by rule" in stderr


def test_exit_1_bad_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("version: 1\nstages: [\n  - name: A\n")
    code, stdout, stderr = same_as_in_process(
        "run", "--customers", DATA / "customers.csv", "--rules", rules, "--out", tmp_path / "out")
    assert code == 1
    assert "rules.yaml:3" in stderr and "nothing was written" in stderr
    assert "Traceback" not in stderr and stdout == ""
    assert not (tmp_path / "out").exists()


def test_exit_2_a_command_line_mistake() -> None:
    code, _, stderr = same_as_in_process("run", "--rules", RULES, "--frobnicate")
    assert code == 2
    assert "Usage: lifecycle run" in stderr and "No such option: --frobnicate" in stderr
    assert "Traceback" not in stderr


def test_exit_3_diff_fail_on_change(tmp_path: Path) -> None:
    code, _, stderr = same_as_in_process(
        "diff", *FIXTURE, "--rules", RULES, "--rules", DATA / "rules-draft.yaml", "--as-of",
        AS_OF, "--fail-on-change", "--out", tmp_path)
    assert code == 3, stderr
    assert (tmp_path / "diff.csv").exists()


# -- progress: on a terminal only ---------------------------------------------------------

def on_a_terminal(*args: str | Path, columns: int = 120) -> tuple[int, str]:
    """Run with standard output and error on a pseudo-terminal, as in an interactive
    shell; the exit code and everything the terminal was sent."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, **ENV, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    proc = subprocess.Popen([sys.executable, "-m", "lifecycle_cli", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower,
                            env=env)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 1 << 16)
        except OSError:  # the process is gone and closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return proc.wait(timeout=120), shown.decode("utf-8", "replace")


def backfill_args(state: Path, *extra: str) -> list[str | Path]:
    return ["backfill", *FIXTURE, "--rules", RULES, "--from", "2026-10-06", "--to", AS_OF,
            "--state", state, *extra]


def test_a_backfill_on_a_terminal_shows_days_done_and_an_eta(tmp_path: Path) -> None:
    code, shown = on_a_terminal(*backfill_args(tmp_path / "state"))
    assert code == 0, shown
    counts = re.findall(r"replaying days.*?(\d+)/27 days", shown)
    assert counts and len({int(c) for c in counts}) > 1  # it moved while the days ran
    assert re.search(r"\d+/27 days  \d+:\d\d:\d\d  ETA \d+:\d\d:\d\d", shown)
    assert "27 day(s)" in shown  # then the summary, the bar gone


def test_no_progress_on_a_pipe_or_with_quiet(tmp_path: Path) -> None:
    piped = lifecycle_process(*backfill_args(tmp_path / "a"))
    assert piped.returncode == 0 and "27 day(s)" in piped.stderr
    assert "replaying days" not in piped.stderr and "\x1b[" not in piped.stderr
    code, shown = on_a_terminal(*backfill_args(tmp_path / "b", "--quiet"))
    assert code == 0 and shown == ""


def test_sample_on_a_terminal_counts_the_rows_it_writes(tmp_path: Path) -> None:
    code, shown = on_a_terminal("sample", "--customers", "1000", "--usage-rows", "3000000",
                                "--out", tmp_path, "--as-of", AS_OF)
    assert code == 0, shown
    assert re.search(r"writing usage rows.*[\d,]+/3,000,000 rows", shown)


# -- shell completion ----------------------------------------------------------------------

def test_completion_prints_a_script_for_each_shell() -> None:
    scripts = {shell: lifecycle("completion", shell) for shell in
               ("bash", "zsh", "fish", "powershell")}
    assert all(r.returncode == 0 for r in scripts.values())
    assert "complete -o default -F _lifecycle_completion lifecycle" in scripts["bash"].stdout
    assert "compdef _lifecycle_completion lifecycle" in scripts["zsh"].stdout
    assert "complete --command lifecycle" in scripts["fish"].stdout
    assert "Register-ArgumentCompleter -Native -CommandName lifecycle" in \
        scripts["powershell"].stdout
    wrong = lifecycle("completion", "tcsh")
    assert wrong.returncode == 2 and "'tcsh' is not one of" in wrong.stderr


def completions(words: str, shell: str = "bash") -> list[str]:
    """What the command answers the shell for the words typed so far (the last one
    being completed), as the completion script asks it."""
    env = {"_LIFECYCLE_COMPLETE": f"complete_{shell}", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1), "_TYPER_COMPLETE_ARGS": words}
    proc = lifecycle_process(env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_command_completes_commands_options_and_choices() -> None:
    assert completions("lifecycle ru") == ["run"]
    assert completions("lifecycle c") == ["check", "completion", "ctas"]
    assert "--no-dry-run" in completions("lifecycle run --no-")
    assert completions("lifecycle run --format ") == ["csv", "parquet", "xlsx"]
    assert completions("lifecycle report --value arr --qu") == ["--quiet"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completes_with_the_installed_script(tmp_path: Path) -> None:
    script = tmp_path / "lifecycle.bash"
    script.write_text(lifecycle("completion", "bash").stdout)
    # `lifecycle` as installed next to this Python, as a user's shell finds it on PATH
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    typed = 'COMP_WORDS=(lifecycle backfill --keep); COMP_CWORD=2'
    proc = subprocess.run(
        ["bash", "-c", f'source "{script}"; {typed}; _lifecycle_completion lifecycle; '
                       'printf "%s\\n" "${COMPREPLY[@]}"'],
        capture_output=True, text=True, env={**os.environ, "PATH": path}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["--keep-export-stages"]
