"""The real `lifecycle` command: exit codes, streams, files, and messages users see."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import polars as pl
import pytest
from cli_util import AS_OF, DATA, FIXTURE, RULES, commands, lifecycle, run_args, snapshot


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
def test_help_has_an_example(command: str) -> None:
    epilog = commands()[command].epilog or ""
    assert epilog.startswith("Example")
    example = " ".join(epilog.split("\n\n")[1].split()[:3])  # e.g. lifecycle run --customers
    assert example.startswith(f"lifecycle {command} ")
    result = lifecycle(command, "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and example in result.stdout


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
