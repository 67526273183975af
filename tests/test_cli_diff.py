"""The real `lifecycle diff` command: exit codes, streams, files, and the summary."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_util import AS_OF, DATA, FIXTURE, RULES, lifecycle, snapshot

DRAFT = DATA / "rules-draft.yaml"  # rules/default.yaml with a threshold changed, a rule added


def diff_args(*extra: str | Path, old: Path = RULES, new: Path = DRAFT) -> list:
    return ["diff", *FIXTURE, "--rules", old, "--rules", new, "--as-of", AS_OF, *extra]


def test_summary_on_stderr_and_nothing_on_stdout(tmp_path: Path) -> None:
    result = lifecycle(*diff_args(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []  # no --out: the summary only
    err = result.stderr
    assert "12 customers compared; 1 lands in another stage, 1 reaches the same stage" in err
    assert f"old: {RULES}" in err and f"new: {DRAFT}" in err
    # what changed between the files
    assert re.search(r"early_renewal +│ added +│ from: 'Onboarding'; to: 'Renewal'; when:", err)
    assert "'active_users_30d >= 3 AND logins_30d >= 20' ->" in err
    # where customers land instead, and moves by rule with the change
    assert "Customers landing elsewhere" in err
    assert "Adopting" in err and "Launched" in err
    moves = err[err.index("Moves by rule, old vs new") :]
    assert re.search(r"early_renewal +│ +0 │ +1 │ +\+1", moves)
    assert re.search(r"adopted +│ +1 │ +0 │ +-1", moves)
    assert "trained" not in moves  # rules that move as many customers are left out


def test_out_writes_diff_csv_and_stdout_gets_the_same_table(tmp_path: Path) -> None:
    result = lifecycle(*diff_args("--out", tmp_path / "out", "--stdout"))
    assert result.returncode == 0, result.stderr
    written = tmp_path / "out" / "diff.csv"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["diff.csv"]
    assert result.stdout == written.read_text()
    assert result.stdout.splitlines()[0] == (
        "customer_id,stage_before,old_stage,new_stage,change,"
        "old_rules,new_rules,old_reason,new_reason"
    )
    assert f"wrote {written}" in result.stderr


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path) -> None:
    for fmt in ("csv", "parquet", "xlsx"):
        a = lifecycle(*diff_args("--out", tmp_path / f"a-{fmt}", "--format", fmt))
        b = lifecycle(*diff_args("--out", tmp_path / f"b-{fmt}", "--format", fmt))
        assert a.returncode == b.returncode == 0, a.stderr
        assert snapshot(tmp_path / f"a-{fmt}") == snapshot(tmp_path / f"b-{fmt}"), fmt
        assert list(snapshot(tmp_path / f"a-{fmt}")) == [f"diff.{fmt}"]


def test_xlsx_reads_back(tmp_path: Path) -> None:
    import openpyxl

    result = lifecycle(*diff_args("--out", tmp_path, "--format", "xlsx"))
    assert result.returncode == 0, result.stderr
    sheet = openpyxl.load_workbook(tmp_path / "diff.xlsx")["diff"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0][:6] == [
        "customer_id", "stage_before", "old_stage", "new_stage", "change", "old_rules"
    ]
    by_id = {r[0]: r for r in rows[1:]}
    assert sorted(by_id) == ["0002", "0003"]  # ids stay text
    assert by_id["0002"][4] == "path" and by_id["0002"][6] == "early_renewal"
    assert by_id["0003"][2:5] == ["Adopting", "Launched", "stage"]


def test_the_same_file_twice_shows_no_difference() -> None:
    result = lifecycle(*diff_args("--stdout", "--fail-on-change", new=RULES))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 1  # the header only
    assert "No customer lands elsewhere" in result.stderr
    assert "The files decide alike" in result.stderr


def test_fail_on_change_exits_3(tmp_path: Path) -> None:
    result = lifecycle(*diff_args("--fail-on-change", "--out", tmp_path))
    assert result.returncode == 3, result.stderr
    assert (tmp_path / "diff.csv").exists()  # the table is still written


@pytest.mark.parametrize("which", ["old", "new"])
def test_a_broken_rules_file_exits_1_naming_it(tmp_path: Path, which: str) -> None:
    broken = tmp_path / f"{which}.yaml"
    broken.write_text(RULES.read_text().replace('when: "trained"', 'when: "trainedd"'))
    files = {"old": RULES, "new": DRAFT, which: broken}
    result = lifecycle(*diff_args("--out", tmp_path / "out", old=files["old"], new=files["new"]))
    assert result.returncode == 1
    assert f"{which}.yaml" in result.stderr and "trainedd" in result.stderr
    assert "nothing was written" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_both_unreadable_rules_files_are_reported_at_once(tmp_path: Path) -> None:
    result = lifecycle(
        *diff_args(old=tmp_path / "gone.yaml", new=tmp_path / "missing.yaml"), cwd=tmp_path
    )
    assert result.returncode == 1
    assert "2 problems" in result.stderr
    assert "gone.yaml" in result.stderr and "missing.yaml" in result.stderr


@pytest.mark.parametrize(
    "rules",
    [
        ["--rules", str(RULES)],
        ["--rules", str(RULES), "--rules", str(DRAFT), "--rules", str(RULES)],
        [],
    ],
)
def test_not_two_rules_files_exits_2(tmp_path: Path, rules: list[str]) -> None:
    result = lifecycle("diff", *FIXTURE, *rules, "--out", tmp_path / "out")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    if rules:
        assert "give --rules exactly twice" in result.stderr


def test_help_has_an_example() -> None:
    result = lifecycle("diff", "--help")
    assert result.returncode == 0
    assert "Example" in result.stdout and "--rules" in result.stdout
