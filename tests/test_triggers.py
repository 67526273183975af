"""The CTA trigger registry: the rest of the system follows it, its rules errors stay
helpful, and docs/rules.md agrees.

A test-only trigger (`on: long_stay`, with a key of its own) is registered by a
fixture and removed afterwards, then taken through the rules model, its checks,
its error messages and a run.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal

import polars as pl
import pytest
from conftest import runtime_imports, write_csv
from pydantic import Field

from lifecycle_cli import RulesError, parse_rules, run
from lifecycle_cli.columns import DAYS_IN_STAGE
from lifecycle_cli.ctas import triggers
from lifecycle_cli.ctas.triggers import (
    TRIGGERS,
    CTABase,
    Firing,
    Trigger,
    TriggerProblem,
    in_stage,
    register,
    triggers_taking,
    unregister,
)
from lifecycle_cli.expressions import Kind, reason_expr

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 11, 1)
HEAD = """\
version: 1
stages:
  - {name: A, expected_days: 40}
  - {name: B}
initial_stage: A
ctas:
"""


class LongStayCTA(CTABase):
    on: Literal["long_stay"]
    min_days: int = Field(ge=0)


def _long_stay_check(rule: CTABase, expected_days: Mapping[str, int | None]
                     ) -> list[TriggerProblem]:
    assert isinstance(rule, LongStayCTA)
    if rule.min_days == 0:
        return [("`min_days: 0` fires when the customer enters; use `on: enter`", "min_days")]
    return []


def _long_stay_fires(firing: Firing) -> pl.Expr:
    assert isinstance(firing.rule, LongStayCTA)
    return in_stage(firing.rule) & (pl.col(DAYS_IN_STAGE) >= firing.rule.min_days)


@pytest.fixture
def long_stay() -> Iterator[None]:
    """`on: long_stay`: fires when a customer has been `min_days` days in `stage`."""
    register(Trigger(
        "long_stay", LongStayCTA, needs_stage=True, fires=_long_stay_fires,
        reason=lambda f: reason_expr([(DAYS_IN_STAGE, pl.col(DAYS_IN_STAGE), Kind.NUMBER)]),
        check=_long_stay_check,
    ))
    try:
        yield
    finally:
        unregister("long_stay")


def problems_of(text: str) -> list:
    with pytest.raises(RulesError) as info:
        parse_rules(HEAD + textwrap.indent(textwrap.dedent(text), "  "), file="rules.yaml")
    return info.value.problems


def located(problems: list) -> list[tuple[int, str, str | None, str]]:
    return [(p.line, p.path, p.rule_id, p.message) for p in problems]


@pytest.mark.usefixtures("long_stay")
def test_a_registered_trigger_is_read_by_the_rules_model() -> None:
    rules = parse_rules(HEAD + "  - {id: long, name: Long, on: long_stay, stage: A, "
                               "min_days: 20}\n  - {id: hi, name: Hi, on: enter, stage: A}\n")
    long, hi = rules.ctas
    assert isinstance(long, LongStayCTA) and long.min_days == 20 and long.when is None
    assert type(hi) is triggers.EnterCTA
    [p] = problems_of("- {id: c, name: n, on: long_sty, stage: A, min_days: 3}\n")
    assert located([p]) == [(7, "ctas[0].on", "c", "'long_sty' is not allowed here; expected "
                             "'enter', 'overdue', 'when' or 'long_stay'")]
    assert p.hint == "did you mean 'long_stay'?"


@pytest.mark.usefixtures("long_stay")
def test_a_registered_trigger_is_checked() -> None:
    problems = problems_of("""\
        - {id: a, name: n, on: long_stay, min_days: 5}
        - {id: b, name: n, on: long_stay, stage: A}
        - {id: c, name: n, on: long_stay, stage: A, min_days: -1}
        - {id: d, name: n, on: long_stay, stage: A, min_days: 0}
        - {id: e, name: n, on: enter, stage: A, min_days: 5}
        - {id: f, name: n, on: long_stay, stage: Q, min_days: 5, mn_days: 3}
        """)
    assert located(problems) == [
        (7, "ctas[0]", "a", "a CTA with `on: long_stay` needs a `stage`"),
        (8, "ctas[1].min_days", "b", "required key 'min_days' is missing"),
        (9, "ctas[2].min_days", "c", "input should be greater than or equal to 0 (found -1)"),
        (10, "ctas[3].min_days", "d",
         "`min_days: 0` fires when the customer enters; use `on: enter`"),
        (11, "ctas[4].min_days", "e",
         "`min_days` only applies to `on: long_stay` CTAs (this one is `on: enter`)"),
        (12, "ctas[5].mn_days", "f", "unknown key 'mn_days'"),
        (12, "ctas[5].stage", "f", "unknown stage 'Q'"),
    ]
    assert problems[5].hint == "did you mean 'min_days'?"


@pytest.mark.usefixtures("long_stay")
def test_a_registered_trigger_fires_in_a_run(tmp_path: Path) -> None:
    rules = parse_rules(HEAD + textwrap.indent(textwrap.dedent("""\
        - {id: long, name: Long in A, on: long_stay, stage: A, min_days: 20, due_days: 2,
           owner: csm}
        - {id: hi, name: Hello, on: enter, stage: B}
        """), "  "))
    customers = write_csv(tmp_path / "customers.csv", [
        {"customer_id": "c1", "stage": "A", "stage_entered_at": "2026-10-01", "csm": "ann"},
        {"customer_id": "c2", "stage": "A", "stage_entered_at": "2026-10-29", "csm": "bob"},
        {"customer_id": "c3", "stage": "B", "stage_entered_at": "2026-09-01", "csm": "cy"},
        {"customer_id": "c4", "stage": "A", "stage_entered_at": "2026-10-12", "csm": ""},
    ])
    result = run(rules, customers, [], AS_OF)
    assert result.ctas is not None
    created = result.ctas.created.select(
        "cta_id", "rule_id", "customer_id", "stage", "owner", "due_on", "reason").to_dicts()
    assert created == [
        {"cta_id": "long:c1:A:2026-10-01", "rule_id": "long", "customer_id": "c1", "stage": "A",
         "owner": "ann", "due_on": dt.date(2026, 11, 3), "reason": "days_in_stage=31"},
        {"cta_id": "long:c4:A:2026-10-12", "rule_id": "long", "customer_id": "c4", "stage": "A",
         "owner": None, "due_on": dt.date(2026, 11, 3), "reason": "days_in_stage=20"},
    ]


def test_a_removed_trigger_is_refused_again() -> None:
    text = "- {id: c, name: n, on: long_stay, stage: A, min_days: 3}\n"
    assert [p.message for p in problems_of(text)] == [
        "'long_stay' is not allowed here; expected 'enter', 'overdue' or 'when'",
        "unknown key 'min_days'",  # no trigger takes it now
    ]
    with pytest.raises(ValueError, match="already registered"):
        register(TRIGGERS["enter"])
    with pytest.raises(ValueError, match="must be Literal"):
        register(Trigger("other", LongStayCTA, needs_stage=False, fires=_long_stay_fires,
                         reason=_long_stay_fires))


# -- the built-in triggers' errors, through the union of their models ---------------------------

def test_a_key_of_another_trigger_is_named_as_such() -> None:
    problems = problems_of("""\
        - {id: a, name: n, on: enter, stage: A, when: "TRUE"}
        - {id: b, name: n, on: overdue, stage: A, when: true, due_days: -1}
        """)
    assert located(problems) == [
        (7, "ctas[0].when", "a",
         "`when` only applies to `on: when` CTAs (this one is `on: enter`)"),
        (8, "ctas[1].due_days", "b", "input should be greater than or equal to 0 (found -1)"),
        (8, "ctas[1].when", "b",
         "`when` only applies to `on: when` CTAs (this one is `on: overdue`)"),
    ]
    assert triggers_taking("when") == ["when"]


def test_a_rule_without_a_known_on_still_reports_its_other_keys() -> None:
    problems = problems_of("""\
        - {id: a, on: entr, stage: A, when: "TRUE", due_days: -1, prio: 1}
        - {id: b}
        - hello
        """)
    assert located(problems) == [
        (7, "ctas[0].on", "a", "'entr' is not allowed here; expected 'enter', 'overdue' or "
                               "'when'"),
        (7, "ctas[0].name", "a", "required key 'name' is missing"),
        (7, "ctas[0].due_days", "a", "input should be greater than or equal to 0 (found -1)"),
        (7, "ctas[0].prio", "a", "unknown key 'prio'"),
        (8, "ctas[1].on", "b", "required key 'on' is missing"),
        (8, "ctas[1].name", "b", "required key 'name' is missing"),
        (9, "ctas[2]", None,
         "input should be a valid dictionary or instance of cta (found 'hello')"),
    ]
    assert problems[0].hint == "did you mean 'enter'?"
    assert problems[3].hint == "did you mean 'priority'?"


def test_every_cta_problem_of_the_docs_example_at_once() -> None:
    # docs/rules.md, Validation, "CTA mistakes": each rule's problems in one pass
    text = """\
        - {id: kickoff, name: Kickoff call, on: enter, playbook: onboardng}
        - {id: kickoff, name: Adoption stalled, on: overdue, stage: B}
        - {id: quiet, name: No logins for 14 days, on: when}
        """
    with pytest.raises(RulesError) as info:
        parse_rules(HEAD + textwrap.indent(textwrap.dedent(text), "  ")
                    + "playbooks:\n  onboarding: [{task: t}]\n")
    assert located(info.value.problems) == [
        (7, "ctas[0]", "kickoff", "a CTA with `on: enter` needs a `stage`"),
        (7, "ctas[0].playbook", "kickoff", "unknown playbook 'onboardng'"),
        (8, "ctas[1].id", "kickoff", "duplicate CTA id 'kickoff' (also ctas[0])"),
        (8, "ctas[1].stage", "kickoff",
         "stage 'B' has no expected_days, so nobody is ever overdue in it"),
        (9, "ctas[2]", "quiet", "a CTA with `on: when` needs a `when` condition"),
    ]


def test_when_and_close_when_may_be_yaml_booleans() -> None:
    rules = parse_rules(HEAD + "  - {id: a, name: n, on: when, when: true, close_when: false}\n")
    [cta] = rules.ctas
    assert (cta.when, cta.close_when) == ("TRUE", "FALSE")
    assert cta.model_dump()["when"] == "TRUE"  # as the file names it


# -- the docs ---------------------------------------------------------------------------------

RULES_MD = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
CTAS_MD = (ROOT / "docs" / "ctas.md").read_text(encoding="utf-8")


def words(names: list[str], template: str = "`{}`", last: str = " or ") -> str:
    quoted = [template.format(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + last + quoted[-1]


def test_docs_name_every_trigger() -> None:
    names = triggers.names()
    # the `on` key's row in the table of a CTA rule's keys
    assert f"| `on` | {words(names)} | required |" in RULES_MD
    # when each one creates its CTA: a bullet each, in the registry's order
    section = RULES_MD[RULES_MD.index("When a rule creates its CTA"):]
    section = section[:section.index("\n\n", section.index("\n- "))]
    assert re.findall(r"^- `(\w+)`:", section, re.MULTILINE) == names
    # the `stage` key: required exactly where the trigger needs it
    needs = [n for n in names if TRIGGERS[n].needs_stage]
    optional = [n for n in names if not TRIGGERS[n].needs_stage]
    assert (f"Required for {words(needs, '`on: {}`', ' and ')}; optional for "
            f"{words(optional, '`on: {}`')}." in RULES_MD)
    # the `when` key: only the triggers whose model takes it
    takes = triggers_taking("when")
    assert (f"Required for {words(takes, '`on: {}`')}; not allowed with "
            f"{words([n for n in names if n not in takes])}." in RULES_MD)
    # docs/ctas.md's table of triggers
    table = CTAS_MD[CTAS_MD.index("| `on` | creates the CTA"):].split("\n\n")[0]
    assert re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)[1:] == names


LEAVES = {"lifecycle_cli.columns", "lifecycle_cli.expressions", "lifecycle_cli.errors",
          "lifecycle_cli.suggest", "lifecycle_cli.models"}


def test_triggers_module_imports_only_leaves() -> None:
    """The rules model imports the registry: the registry must not import the rules, nor the
    packages above them (engine, day, jobs, state, check, report)."""
    for path in (ROOT / "lifecycle_cli" / "ctas" / "triggers.py",
                 ROOT / "lifecycle_cli" / "models.py"):
        assert {m for m in runtime_imports(path) if m.startswith("lifecycle_cli")} <= LEAVES


@pytest.mark.parametrize("first", ["lifecycle_cli.ctas.triggers", "lifecycle_cli.rules.model",
                                   "lifecycle_cli.models"])
def test_no_import_cycle_whichever_module_comes_first(first: str) -> None:
    code = (f"import {first}; import lifecycle_cli.rules.model as m; "
            "assert m.Rules.model_fields['ctas']")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
