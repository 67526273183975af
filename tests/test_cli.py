"""The real `lifecycle` command: exit codes, streams, files, and messages users see."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import typer.main
from cli_util import (
    AS_OF,
    DATA,
    FIXTURE,
    ROOT,
    RULES,
    commands,
    lifecycle,
    run_args,
    snapshot,
)

from lifecycle_cli.cli import app
from lifecycle_cli.cli.common import example_commands


def test_run_writes_outputs_and_the_summary_goes_to_stderr(tmp_path: Path) -> None:
    result = lifecycle(*run_args(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "Moves by rule" in result.stderr and "Customers by stage" in result.stderr
    assert "1 for customers not in the customers export" in result.stderr
    assert "1 without a timestamp" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "ctas.csv",
        "customers.csv",
        "tasks.csv",
        "transitions.csv",
    ]
    transitions = pl.read_csv(tmp_path / "out" / "transitions.csv", infer_schema=False)
    assert transitions.columns == [
        "as_of",
        "customer_id",
        "from_stage",
        "to_stage",
        "rule_id",
        "hop",
        "days_in_from_stage",
        "reason",
    ]


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "xlsx"):
        a = lifecycle(*run_args(tmp_path / f"a-{fmt}", "--format", fmt))
        b = lifecycle(*run_args(tmp_path / f"b-{fmt}", "--format", fmt))
        assert a.returncode == b.returncode == 0, a.stderr
        assert snapshot(tmp_path / f"a-{fmt}") == snapshot(tmp_path / f"b-{fmt}"), fmt


def test_formats(tmp_path: Path) -> None:
    assert lifecycle(*run_args(tmp_path / "p", "--format", "parquet")).returncode == 0
    frame = pl.read_parquet(tmp_path / "p" / "customers.parquet")
    assert frame["customer_id"].to_list()[:2] == ["0001", "0002"]
    assert lifecycle(*run_args(tmp_path / "x", "--format", "xlsx")).returncode == 0
    assert (tmp_path / "x" / "lifecycle.xlsx").exists()


def test_stdout_pipe_gets_the_table_as_csv(tmp_path: Path) -> None:
    result = lifecycle(*run_args(tmp_path / "out", "--stdout", "transitions"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == (tmp_path / "out" / "transitions.csv").read_text()
    only_pipe = lifecycle(
        "run",
        "--customers",
        DATA / "customers.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--stdout",
        "customers",
    )
    assert only_pipe.returncode == 0, only_pipe.stderr
    assert only_pipe.stdout.startswith("customer_id,name,")


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = lifecycle(*run_args(tmp_path / "out", "--dry-run"))
    assert result.returncode == 0, result.stderr
    assert "dry run" in result.stderr
    assert not (tmp_path / "out").exists()


def test_yesterdays_output_is_todays_input(tmp_path: Path) -> None:
    assert lifecycle(*run_args(tmp_path / "day1")).returncode == 0
    again = lifecycle(*run_args(tmp_path / "day2", customers=tmp_path / "day1" / "customers.csv"))
    assert again.returncode == 0, again.stderr
    day1 = (tmp_path / "day1" / "customers.csv").read_text().splitlines()
    day2 = (tmp_path / "day2" / "customers.csv").read_text().splitlines()
    assert day1[0] == day2[0]  # same columns, computed ones replaced not doubled
    transitions = pl.read_csv(tmp_path / "day2" / "transitions.csv")
    assert transitions.height == 0  # nothing moves twice on the same day


BAD_CUSTOMERS = {
    "duplicate_ids": ("customer_id,stage\nC1,Onboarding\nC1,Launched\n", "'C1' on line 2, line 3"),
    "empty_id": ("customer_id,stage\nC1,Onboarding\n,Launched\n", "empty id: line 3"),
    "missing_id_column": ("id,stage\nC1,Onboarding\n", "required column 'customer_id'"),
    "unknown_stage": ("customer_id,stage\nC1,Onbording\n", "did you mean 'Onboarding'?"),
    "bad_date": (
        "customer_id,stage,stage_entered_at\nC1,Onboarding,2026-02-30\n",
        "line 2: '2026-02-30'",
    ),
    "empty_file": ("", "the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_CUSTOMERS))
def test_bad_customers_exit_1_with_a_clear_message_and_nothing_written(
    tmp_path: Path, case: str
) -> None:
    content, message = BAD_CUSTOMERS[case]
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "customers.csv").write_text(content)
    before = snapshot(inputs)
    result = lifecycle(
        "run",
        "--customers",
        inputs / "customers.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--out",
        tmp_path / "out",
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "customers.csv" in result.stderr
    assert "Traceback" not in result.stderr
    assert "nothing was written" in result.stderr
    assert not (tmp_path / "out").exists()
    assert snapshot(inputs) == before


@pytest.mark.parametrize(
    ("rules_text", "message"),
    [
        ("version: 1\nstages: [\n  - name: A\n", "rules.yaml:3"),
        ('version: 1\nstages: !!python/object/apply:os.system ["echo hi"]\n', "not allowed"),
    ],
)
def test_bad_rules_exit_1(tmp_path: Path, rules_text: str, message: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules_text)
    result = lifecycle(
        "run", "--customers", DATA / "customers.csv", "--rules", rules, "--out", tmp_path / "out"
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_output_folder_that_would_replace_an_input(tmp_path: Path) -> None:
    shutil.copy(DATA / "customers.csv", tmp_path / "customers.csv")
    before = snapshot(tmp_path)
    result = lifecycle(
        "run",
        "--customers",
        tmp_path / "customers.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--out",
        tmp_path,
    )
    assert result.returncode == 1
    assert "would replace the input file" in result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--customers", "x.csv", "--rules", "r.yaml", "--as-of", "2026-13-01", "--out", "o"],
        ["run", "--customers", "x.csv", "--rules", "r.yaml", "--frobnicate"],
        ["run", "--rules", "r.yaml", "--out", "o"],
        ["run", "--customers", str(DATA / "customers.csv"), "--rules", str(RULES)],
        ["nonsense"],
    ],
)
def test_command_line_mistakes_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = lifecycle(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_validate_ok_and_against_data() -> None:
    result = lifecycle("validate", "--rules", RULES)
    assert result.returncode == 0 and "ok:" in result.stderr
    with_data = lifecycle(
        "validate",
        "--rules",
        RULES,
        "--customers",
        DATA / "customers.csv",
        "--usage",
        DATA / "usage.csv",
    )
    assert with_data.returncode == 0, with_data.stderr
    assert "checked against 12 customers" in with_data.stderr


def test_validate_against_data_names_rule_line_and_closest_column(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES.read_text()
        .replace('"health_score < 40', '"health_scor < 40')
        .replace("column: user_id", "column: userid")
    )
    result = lifecycle("validate", "--rules", rules, *FIXTURE)
    assert result.returncode == 1
    assert (
        "unknown name 'health_scor'" in result.stderr
        or "usage export has no column" in result.stderr
    )
    assert "did you mean 'user_id'?" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_bare_number_date_comparison(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES.read_text().replace('"days_until(renewal_date)"', '"renewal_date - as_of"')
    )
    result = lifecycle("validate", "--rules", rules, *FIXTURE)
    assert result.returncode == 1
    assert "compares a date difference" in result.stderr
    assert "rule 'renewal_window'" in result.stderr


def test_explain_text_and_json() -> None:
    args = ["explain", "0002", "0009", *FIXTURE, "--rules", RULES, "--as-of", AS_OF]
    text = lifecycle(*args)
    assert text.returncode == 0, text.stderr
    assert "onboarding_timeout" in text.stdout and "<- wins" in text.stdout
    assert "moves to Renewal by rule 'renewal_window'" in text.stdout
    assert "null (false)" in text.stdout  # 0009's health score is blank
    data = json.loads(lifecycle(*args, "--format", "json").stdout)
    assert [d["customer_id"] for d in data] == ["0002", "0009"]
    assert data[0]["stage"] == "Renewal"
    assert [h["winner"] for h in data[0]["hops"]] == ["onboarding_timeout", "renewal_window", None]
    assert data[0]["transitions"][0]["reason"] == "days_in_stage=92"
    missing = lifecycle("explain", "0xx2", "--customers", DATA / "customers.csv", "--rules", RULES)
    assert missing.returncode == 1 and "no customer with id '0xx2'" in missing.stderr


def test_sample_is_seeded(tmp_path: Path) -> None:
    for name in ("a", "b"):
        result = lifecycle(
            "sample",
            "--customers",
            "50",
            "--usage-rows",
            "500",
            "--seed",
            "7",
            "--as-of",
            AS_OF,
            "--out",
            tmp_path / name,
        )
        assert result.returncode == 0, result.stderr
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    run = lifecycle(
        "run",
        "--customers",
        tmp_path / "a" / "customers.csv",
        "--usage",
        tmp_path / "a" / "usage.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--dry-run",
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("command", commands())
def test_help_has_an_example_that_fits_the_terminal(command: str) -> None:
    examples = example_commands(commands()[command].epilog)
    assert any(e.startswith(f"lifecycle {command} ") for e in examples), examples
    result = lifecycle(command, "--help")  # 120 columns; help text keeps to 80
    assert result.returncode == 0
    assert "Example" in result.stdout
    for example in examples:  # each line of a folded example, as written
        for line in (commands()[command].epilog or "").split("\n"):
            if line.strip() and line.strip() in example.replace("  ", " "):
                assert line.strip() in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def help_text(*args: str, columns: int) -> str:
    result = lifecycle(*args, "--help", env={"COLUMNS": str(columns)})
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", [60, 80, 120])
@pytest.mark.parametrize("command", ["", *commands()])
def test_help_text_fills_its_lines_and_never_breaks_a_sentence_early(
        command: str, columns: int) -> None:
    """Every line of a paragraph but its last is as full as the terminal allows: the next
    word would not have fit. A docstring's own line breaks would break that."""
    text = help_text(*([command] if command else []), columns=columns)
    width = min(columns, 80) - 2  # click's help: at most 78 columns
    lines = [line.rstrip() for line in text.splitlines()]
    group: Any = commands()[command] if command else typer.main.get_command(app)
    entries = set(getattr(group, "commands", {}))  # a group lists its commands, one a line
    for line, following in zip(lines, lines[1:], strict=False):
        if not line.strip() or not following.strip() or "\\" in line:
            continue
        indent = len(line) - len(line.lstrip())
        if len(following) - len(following.lstrip()) != indent or line.lstrip().startswith("-") \
                or following.split()[0] in entries:
            continue  # a new entry of a list, or an option's own line
        next_word = following.split()[0]
        assert len(line) + 1 + len(next_word) > width, f"{line!r} then {following!r}"


def test_every_on_off_option_is_a_switch_with_its_opposite_and_no_placeholder() -> None:
    for name, command in [("", typer.main.get_command(app)), *commands().items()]:
        text = help_text(*([name] if name else []), columns=80)
        assert "<bool>" not in text and "BOOLEAN" not in text, name
        for param in command.params:
            if getattr(param, "is_bool_flag", False) and not param.is_eager:
                long = next(o for o in param.opts if o.startswith("--"))
                assert param.secondary_opts == [f"--no-{long[2:]}"], (name, long)
                assert f"{long} / --no-{long[2:]}" in text, (name, long)


def test_a_switch_given_a_value_says_it_is_a_switch(tmp_path: Path) -> None:
    result = lifecycle(*run_args(tmp_path / "out", "--dry-run", "true"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "'true': a switch takes no value. Write --dry-run alone to turn it on" \
        in result.stderr
    assert not (tmp_path / "out").exists()
    # the opposite switch: the last one given wins
    result = lifecycle(*run_args(tmp_path / "out", "--dry-run", "--no-dry-run", "--quiet"))
    assert result.returncode == 0 and (tmp_path / "out" / "customers.csv").exists()


def test_customer_ids_after_a_switch_are_ids() -> None:
    """`explain` takes ids: "1" after a switch may be a customer's id, not a value."""
    result = lifecycle("explain", "--rules", RULES, *FIXTURE, "--as-of", AS_OF, "1")
    assert "a switch takes no value" not in result.stderr
    assert "no customer with id '1'" in result.stderr


@pytest.mark.parametrize(("value", "message"), [
    ("2026-11-31", "'2026-11-31' is not a date: November 2026 has 30 days"),
    ("2027-02-29", "'2027-02-29' is not a date: February 2027 has 28 days"),
    ("2026-13-01", "'2026-13-01' is not a date: there is no month 13"),
    ("11/01/2026", "'11/01/2026' is not a date; write YYYY-MM-DD"),
])
def test_a_date_that_does_not_exist_says_so(tmp_path: Path, value: str, message: str) -> None:
    result = lifecycle(*run_args(tmp_path / "out"), "--as-of", value)
    assert result.returncode == 2 and message in result.stderr


def test_the_help_examples_run_and_write_only_into_out(tmp_path: Path, request) -> None:
    """Every --help example runs from a checkout of the repository (in this order: the
    state the later ones read is made by the earlier ones) and writes into ./out only.
    The Spark example runs on the test run's one Spark session (tests/spark_util.py)."""
    for folder in ("sample_data", "rules"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    group: Any = typer.main.get_command(app)
    for command in group.commands.values():  # in the order of `lifecycle --help`
        for example in example_commands(command.epilog):
            if "--engine spark" in example:
                request.getfixturevalue("spark_session")
            if example.startswith("lifecycle "):
                result = lifecycle(*shlex.split(example)[1:], cwd=tmp_path)
                assert result.returncode in (0, 3), (example, result.stderr)
            else:
                subprocess.run(example, shell=True, cwd=tmp_path, check=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "rules", "sample_data"]
    assert (tmp_path / "out" / "report.html").exists()
    assert (tmp_path / "out" / "sample" / "customers.parquet").exists()
    assert ROOT.joinpath(".gitignore").read_text().splitlines().count("out/") == 1


def test_validate_with_data_reports_data_and_rules_problems_together(tmp_path: Path) -> None:
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,stage,health_score\nC1,Lanched,50\nC1,Onboarding,20\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES.read_text().replace('"health_score < 40', '"health_scor < 40')
        .replace("owner: csm\n    playbook: adoption", "owner: cs_manager\n    playbook: adoption")
    )
    result = lifecycle(
        "validate", "--rules", rules, "--customers", customers, "--usage", DATA / "usage.csv"
    )
    assert result.returncode == 1
    assert "unknown stage 'Lanched'" in result.stderr
    assert "appear more than once" in result.stderr
    assert "unknown name 'health_scor'" in result.stderr
    assert "owner column 'cs_manager' is not in the customers export" in result.stderr


def test_metric_default_of_the_wrong_type_is_a_rules_problem(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        RULES.read_text().replace(
            "last_seen: {agg: max, column: timestamp}",
            "last_seen: {agg: max, column: timestamp, default: 'soon'}",
        )
    )
    result = lifecycle(
        "run",
        "--rules",
        rules,
        "--customers",
        DATA / "customers.csv",
        "--usage",
        DATA / "usage.csv",
        "--dry-run",
    )
    assert result.returncode == 1
    assert "the default 'soon' is not datetime" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_pipe_that_closes_early_is_not_an_error() -> None:
    import subprocess
    import sys

    # the bundled sample is larger than a pipe's buffer, so the writer meets a closed pipe
    sample = RULES.parent.parent / "sample_data" / "customers.csv"
    command = (
        f"{sys.executable} -m lifecycle_cli run --customers {sample} "
        f"--rules {RULES} --as-of {AS_OF} --stdout customers | head -1"
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.startswith("customer_id,")
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr


def test_xlsx_cells_are_typed_and_ids_stay_text(tmp_path: Path) -> None:
    import openpyxl

    assert lifecycle(*run_args(tmp_path / "x", "--format", "xlsx")).returncode == 0
    sheet = openpyxl.load_workbook(tmp_path / "x" / "lifecycle.xlsx")["customers"]
    header = [c.value for c in sheet[1]]
    row = {h: c for h, c in zip(header, sheet[2], strict=True)}
    assert row["customer_id"].value == "0001" and row["customer_id"].data_type == "s"
    assert row["arr"].value == 12000  # text in the CSV export, a number cell here
    assert row["renewal_date"].is_date
    assert row["churn_notice"].value is False
    assert row["stage"].value == "Launched"
    [name] = [r[1] for r in sheet.iter_rows(min_row=2) if str(r[1].value).startswith("=")]
    assert name.value == '=HYPERLINK("http://x","click")'
    assert name.data_type == "s"  # text, never a formula


NESTED = {
    "parentheses": "(" * 10_000 + "days_in_stage > 3" + ")" * 10_000,
    "nots": "NOT " * 10_000 + "days_in_stage > 3",
}


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("nesting", sorted(NESTED))
def test_a_when_nested_10000_deep_is_refused_with_file_line_and_rule(
        tmp_path: Path, command: str, nesting: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text().replace('when: "days_in_stage >= 60"',
                                               f'when: "{NESTED[nesting]}"'))
    line = next(i for i, text in enumerate(rules.read_text().splitlines(), 1)
                if "NOT NOT" in text or "((((" in text)
    extra = ["--out", tmp_path / "out"] if command == "run" else []
    result = lifecycle(command, "--rules", rules, *FIXTURE, "--as-of", AS_OF, *extra)
    assert result.returncode == 1
    assert f"rules.yaml:{line}, transitions[1].when, rule 'onboarding_timeout': the " \
           "expression nests more than 20 levels deep" in result.stderr
    assert "internal error" not in result.stderr and "Recursion" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_yaml_alias_bomb_is_refused_before_anything_runs(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, 10)]
    rules.write_text("\n".join(lines) + "\n" + RULES.read_text())
    started = time.monotonic()
    result = lifecycle("run", "--rules", rules, *FIXTURE, "--as-of", AS_OF,
                       "--out", tmp_path / "out")
    assert time.monotonic() - started < 5
    assert result.returncode == 1
    assert "rules.yaml:5: the aliases in this file stand for more than 10,000 values" \
        in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("given", ["customers", "usage", "rules", "usage-folder", "usage-glob"])
@pytest.mark.parametrize("command", ["run", "backfill", "check"])
def test_summary_json_over_an_input_is_refused_before_anything_runs(
        tmp_path: Path, command: str, given: str) -> None:
    inputs = tmp_path / "in"
    (inputs / "usage").mkdir(parents=True)
    for name in ("customers.csv", "rules.yaml"):
        shutil.copy(DATA / name if name != "rules.yaml" else RULES, inputs / name)
    shutil.copy(DATA / "usage.csv", inputs / "usage" / "usage.csv")
    usage = {"usage-folder": inputs / "usage", "usage-glob": inputs / "usage" / "*.csv"
             }.get(given, inputs / "usage" / "usage.csv")
    target = {"customers": inputs / "customers.csv", "rules": inputs / "rules.yaml",
              "usage": inputs / "usage" / "usage.csv"}.get(given, inputs / "usage" / "x.csv")
    before = snapshot(inputs)
    args = {"run": ["--as-of", AS_OF, "--out", tmp_path / "out"],
            "backfill": ["--from", "2026-10-30", "--to", AS_OF, "--state", tmp_path / "state"],
            "check": ["--as-of", AS_OF, "--out", tmp_path / "out"]}[command]
    result = lifecycle(command, "--customers", inputs / "customers.csv", "--usage", usage,
                       "--rules", inputs / "rules.yaml", *args, "--summary-json", target)
    assert result.returncode == 2, result.stderr
    assert "Invalid value for '--summary-json'" in result.stderr
    assert "the summary needs a file of its own" in result.stderr
    assert snapshot(inputs) == before
    assert not (tmp_path / "out").exists() and not (tmp_path / "state").exists()


def test_summary_json_still_written_on_a_failure_elsewhere(tmp_path: Path) -> None:
    """A run that fails (its --out would replace an input) writes its summary, as the docs
    promise, when --summary-json names no input."""
    shutil.copy(DATA / "customers.csv", tmp_path / "customers.csv")
    result = lifecycle("run", "--customers", tmp_path / "customers.csv", "--rules", RULES,
                       "--as-of", AS_OF, "--out", tmp_path, "--summary-json",
                       tmp_path / "summary.json")
    assert result.returncode == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "error" and "would replace" in summary["problems"][0]["message"]
