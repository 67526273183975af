"""`python -m lifecycle_cli` as a process: the exit status a shell or cron sees, one per code.

The other CLI tests run the command in the test's process (`cli_util.lifecycle`); each
test here also checks that doing so gives the same streams as the process.
"""

from __future__ import annotations

from pathlib import Path

from cli_util import AS_OF, DATA, FIXTURE, RULES, lifecycle, lifecycle_process, run_args

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
