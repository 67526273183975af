"""The findings registry (`lifecycle_cli.compliance.findings`): the rest of `check` follows it,
docs/check.md agrees with it, and a new finding is one module.

A test-only finding (`stale_stage`) is registered by a fixture and removed afterwards,
then taken through `check`, its counts, `--fail-on` and `compliance: fail_on`.

docs/check.md's table of findings is made from the registry (each finding's name,
severity, and its docstring's first paragraph, ``Looks at:`` and ``Reads:``):
``UPDATE_GOLDEN=1 pytest tests/test_findings.py`` rewrites it after a deliberate change.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from cli_util import ROOT, lifecycle
from conftest import runtime_imports

from lifecycle_cli import RulesError, parse_rules
from lifecycle_cli.columns import DAYS_IN_STAGE
from lifecycle_cli.compliance import findings
from lifecycle_cli.compliance.findings import (
    FINDING_SCHEMA,
    FINDINGS,
    SEVERITIES,
    WARNING,
    Context,
    Finding,
    register,
    unregister,
)
from lifecycle_cli.compliance.findings.base import detail
from lifecycle_cli.compliance.run import check, parse_fail_on
from lifecycle_cli.errors import OptionError
from lifecycle_cli.expressions import Kind
from lifecycle_cli.rules.load import load_rules

DATA = Path(__file__).resolve().parent / "data" / "check"
RULES = DATA / "rules.yaml"
USAGE = DATA / "usage.csv"
EXPORT = DATA / "customers-2026-11-01.csv"
AS_OF = dt.date(2026, 11, 1)
CHECK_MD = ROOT / "docs" / "check.md"
PACKAGE = ROOT / "lifecycle_cli" / "compliance" / "findings"

BUILT_IN = ["unknown_stage", "entered_in_future", "stuck", "overdue", "cta_past_due",
            "skipped_stage", "no_owner", "no_renewal_date", "no_usage", "override"]


# -- the registry ---------------------------------------------------------------------------


def test_the_built_in_findings_most_severe_first() -> None:
    assert findings.names() == tuple(BUILT_IN)
    ranks = [SEVERITIES.index(findings.severity(name)) for name in findings.names()]
    assert ranks == sorted(ranks)


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_finding_is_a_module_of_its_own_named_for_it(name: str) -> None:
    finding = findings.finding(name)
    assert type(finding).__module__ == f"lifecycle_cli.compliance.findings.{name}"
    assert (PACKAGE / f"{name}.py").is_file()
    assert finding.problems() == []  # a summary, `Looks at:` and `Reads:`


def test_every_finding_has_a_test_case() -> None:
    """Each kind is expected somewhere: in the data-driven cases of tests/cases/check.yaml,
    or in the golden findings of the fixture in tests/data/check (tests/test_check.py)."""
    cases = set(re.findall(r"finding: (\w+)", (ROOT / "tests/cases/check.yaml").read_text()))
    golden = set(pl.read_csv(ROOT / "tests/golden/findings.csv")["finding"])
    assert set(findings.names()) - cases - golden == set()


def test_every_module_of_the_package_is_a_registered_finding_or_its_support() -> None:
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "base", "context"}
    assert modules == set(BUILT_IN)


def test_register_refuses_what_the_rest_could_not_use() -> None:
    class Nameless(Finding):
        """Something.

        Looks at: the stages after the day's moves
        Reads: —
        """

        name = "Not A Name"
        severity = "fatal"

        def find(self, context: Context) -> pl.LazyFrame:
            raise NotImplementedError

    class Undocumented(Finding):
        name = "any"  # a word of --fail-on
        severity = WARNING

        def find(self, context: Context) -> pl.LazyFrame:
            raise NotImplementedError

    with pytest.raises(ValueError) as info:
        register(Nameless())
    assert "a word in lower case" in str(info.value)
    assert "severity must be one of error, warning, info" in str(info.value)
    with pytest.raises(ValueError) as info:
        register(Undocumented())
    message = str(info.value)
    assert "'any' is a word of --fail-on" in message and "no docstring" in message
    assert "no 'Looks at:' line" in message and "no 'Reads:' line" in message
    with pytest.raises(ValueError, match="'stuck' is already registered"):
        register(findings.finding("stuck"))
    assert findings.names() == tuple(BUILT_IN)


def test_the_docstring_parts() -> None:
    cta = findings.finding("cta_past_due")
    assert cta.summary == "A CTA is open and its `due_on` is before the as-of date."
    # a part runs on over the following lines, up to a blank line
    assert cta.looks_at == ("the state's CTAs, with the as-of date's own created and closed "
                            "as `run --state` would (a CTA that today's run closes is not "
                            "past due)")
    assert cta.reads == "the rules' `ctas`"


# -- what this package may import: the rules import the registry ------------------------------

ALLOWED = {"lifecycle_cli.columns", "lifecycle_cli.expressions", "lifecycle_cli.engine.builtins",
           "lifecycle_cli.suggest", "lifecycle_cli.errors"}


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.name)
def test_findings_import_only_leaves_at_runtime(path: Path) -> None:
    ours = {m for m in runtime_imports(path) if m.startswith("lifecycle_cli")}
    assert {m for m in ours if not m.startswith("lifecycle_cli.compliance.findings")} <= ALLOWED


@pytest.mark.parametrize("first", ["lifecycle_cli.compliance.findings", "lifecycle_cli.rules.model",
                                   "lifecycle_cli.rules.checks",
                                   "lifecycle_cli.compliance.findings.stuck",
                                   "lifecycle_cli.compliance.run", "lifecycle_cli.cli"])
def test_no_import_cycle_whichever_module_comes_first(first: str) -> None:
    code = (f"import {first}; from lifecycle_cli.compliance import findings; "
            "import lifecycle_cli.rules.model; "
            f"assert findings.names() == {tuple(BUILT_IN)!r}")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- docs/check.md --------------------------------------------------------------------------

TABLE_HEADER = "| finding | severity | found when | looks at | reads |"


def findings_table() -> str:
    """docs/check.md's table of findings, from the registry."""
    rows = [TABLE_HEADER, "|---|---|---|---|---|"]
    for f in FINDINGS.values():
        rows.append(f"| `{f.name}` | {f.severity} | {f.summary} | {f.looks_at} | {f.reads} |")
    return "\n".join(rows) + "\n"


def test_the_docs_table_of_findings_is_the_registrys() -> None:
    text = CHECK_MD.read_text()
    start = text.index(TABLE_HEADER)
    end = text.index("\n\n", start) + 1
    expected = findings_table()
    if os.environ.get("UPDATE_GOLDEN") and text[start:end] != expected:
        CHECK_MD.write_text(text[:start] + expected + text[end:])
        return
    assert text[start:end] == expected, (
        "docs/check.md's table of findings differs from the registry's docstrings "
        "(UPDATE_GOLDEN=1 pytest tests/test_findings.py rewrites it)")


def test_the_docs_say_what_detail_holds_for_every_finding() -> None:
    text = CHECK_MD.read_text()
    table = text[text.index("| finding | detail |"):].split("\n\n")[0]
    named = [name for line in table.splitlines()[2:]
             for name in re.findall(r"`(\w+)`", line.split("|")[1])]
    assert sorted(named) == sorted(findings.names())


def test_the_docs_summary_example_shows_each_findings_severity() -> None:
    text = CHECK_MD.read_text()
    shown = dict(re.findall(r"^ (\w+) +│ (error|warning|info) +│", text, re.MULTILINE))
    assert shown == {name: findings.severity(name) for name in findings.names()}


def test_the_readme_and_docs_fail_on_only_registered_findings() -> None:
    """The kinds in the command lines of `lifecycle check`, in `--fail-on ...` code spans (but
    the example of a typo), and in `fail_on: [...]` of the rules."""
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text().replace("\\\n", " ")  # a command continued on the next line
        lists = [kinds for line in text.splitlines() if "lifecycle check " in line
                 for kinds in re.findall(r"--fail-on ([a-z_,]+)", line)]
        lists += [kinds for kinds, typo in re.findall(
            r"`--fail-on ([a-z_,]+)`( \(did you mean)?", text) if not typo]
        lists += [kinds.replace(" ", "") for kinds in re.findall(r"fail_on: \[([a-z_, ]+)\]",
                                                                 text)]
        assert lists or path.name != "check.md"
        for kinds in lists:
            unknown = [k for k in kinds.split(",") if k and k not in findings.names()
                       and k not in findings.RESERVED]
            assert unknown == [], f"{path.name}: --fail-on / fail_on names {unknown}"


# -- a new finding is one module ---------------------------------------------------------------


class StaleStage(Finding):
    """More than 25 days in the stage.

    Looks at: the stages after the day's moves
    Reads: —

    Only with a usage export, to show a finding that is not always checked.
    """

    name = "stale_stage"
    severity = WARNING

    def not_checked(self, context: Context) -> str | None:
        return None if context.usage_given else "no usage export given"

    def find(self, context: Context) -> pl.LazyFrame:
        days = pl.col(DAYS_IN_STAGE)
        return self.rows(context.after.filter(days > 25), context, detail(
            ("days_in_stage", days, Kind.NUMBER)))


@pytest.fixture
def stale_stage() -> Iterator[Finding]:
    finding = register(StaleStage())
    try:
        yield finding
    finally:
        unregister(finding.name)


def test_a_registered_finding_is_found_and_counted(stale_stage: Finding) -> None:
    # a warning: after the other warnings, before the info
    assert findings.names()[-2:] == ("stale_stage", "override")
    result = check(load_rules(RULES), EXPORT, [USAGE], AS_OF)
    stale = result.findings.filter(pl.col("finding") == "stale_stage")
    assert result.findings.schema == pl.Schema(FINDING_SCHEMA)
    # C02 61 days in Onboarding, C03 27 in Launched, C04 31 in Renewal, C07 churned in January
    assert stale["customer_id"].to_list() == ["C02", "C03", "C04", "C07"]
    assert set(stale["severity"]) == {"warning"}
    assert stale["detail"][0] == "days_in_stage=61"
    assert result.counts()["stale_stage"] == 4
    assert list(result.counts())[-2:] == ["stale_stage", "override"]
    # the table's order: after no_usage, before override
    kinds = result.findings["finding"].unique(maintain_order=True).to_list()
    assert kinds[kinds.index("stale_stage") - 1] == "no_usage"
    assert "stale_stage" not in result.not_checked

    without_usage = check(load_rules(RULES), EXPORT, [], AS_OF)
    assert without_usage.not_checked["stale_stage"] == "no usage export given"
    assert without_usage.counts()["stale_stage"] == 0


def test_a_registered_finding_in_fail_on(stale_stage: Finding, tmp_path: Path) -> None:
    assert parse_fail_on("stale_stage,stuck") == ("stuck", "stale_stage")
    assert "stale_stage" in parse_fail_on("any")
    args = ["check", "--customers", EXPORT, "--usage", USAGE, "--rules", RULES,
            "--as-of", AS_OF.isoformat()]
    proc = lifecycle(*args, "--fail-on", "stale_stage")
    assert proc.returncode == 3, proc.stderr
    assert "check failed: stale_stage (4)" in proc.stderr
    assert re.search(r"stale_stage +│ warning +│ +4 │ yes", proc.stderr)
    # not looked for without usage: said so, and not a failure
    proc = lifecycle("check", "--customers", EXPORT, "--rules", RULES, "--as-of",
                     AS_OF.isoformat(), "--fail-on", "stale_stage")
    assert proc.returncode == 0, proc.stderr
    assert "not checked: stale_stage: no usage export given" in proc.stderr

    # the rules' compliance: fail_on takes it too
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text().replace("fail_on: [stuck, unknown_stage]",
                                               "fail_on: [stale_stage]"))
    assert load_rules(rules).compliance.fail_on == ["stale_stage"]
    assert lifecycle("validate", "--rules", rules).returncode == 0
    args[args.index("--rules") + 1] = rules
    proc = lifecycle(*args)
    assert proc.returncode == 3, proc.stderr
    assert "check failed: stale_stage (4)" in proc.stderr


def test_an_unregistered_finding_is_unknown_everywhere(tmp_path: Path) -> None:
    assert "stale_stage" not in findings.names()
    with pytest.raises(OptionError, match="unknown finding 'stale_stage'"):
        parse_fail_on("stale_stage")
    proc = lifecycle("check", "--customers", EXPORT, "--rules", RULES, "--as-of",
                     AS_OF.isoformat(), "--fail-on", "stale_stage")
    assert proc.returncode == 2 and "unknown finding 'stale_stage'" in proc.stderr
    with pytest.raises(RulesError) as info:
        parse_rules("version: 1\nstages: [{name: A}]\ninitial_stage: A\n"
                    "compliance: {fail_on: [stale_stage, stuk]}\n")
    messages = [p.message for p in info.value.problems]
    assert messages == ["unknown finding 'stale_stage'", "unknown finding 'stuk'"]
    assert info.value.problems[1].hint == "did you mean 'stuck'?"
