"""Loading rules files: every problem reported at once, with line, path, rule id and a hint."""

from __future__ import annotations

import re
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

from lifecycle_cli import RulesError, load_rules, parse_rules
from lifecycle_cli.rules.yamlsource import load_yaml

ROOT = Path(__file__).resolve().parents[1]

MINIMAL = """\
version: 1
stages:
  - {name: A, expected_days: 10}
  - {name: B}
  - {name: Z, terminal: true}
initial_stage: A
transitions:
  - {id: go, from: A, to: B, when: "days_in_stage > 3"}
"""


def problems_of(text: str) -> list:
    with pytest.raises(RulesError) as info:
        parse_rules(textwrap.dedent(text), file="rules.yaml")
    return info.value.problems


def test_default_rules_load() -> None:
    rules = load_rules(ROOT / "rules" / "default.yaml")
    assert rules.stage_names == [
        "Onboarding",
        "Launched",
        "Adopting",
        "Renewal",
        "Will Churn",
        "Churned",
    ]
    assert rules.initial_stage == "Onboarding"
    assert rules.effective_max_hops == 6
    assert {t.id for t in rules.transitions} >= {"trained", "renewal_window", "risk", "churned"}


def test_minimal_rules_and_defaults() -> None:
    rules = parse_rules(MINIMAL)
    assert rules.timezone == "UTC"
    assert rules.transitions[0].from_stages == ["A"]
    assert rules.transitions[0].priority == 0
    assert rules.stage("Z").terminal


def test_spec_example_with_ctas_and_playbooks_loads() -> None:
    text = MINIMAL + textwrap.dedent("""\
        columns:
          customers: {customer_id: "Account ID", stage: "Lifecycle Stage"}
          usage: {customer_id: account_id, timestamp: event_time}
        derived:
          days_to_renewal: "days_until(renewal_date)"
        metrics:
          logins_30d: {agg: count, where: "event = 'login'", window_days: 30}
          last_seen: {agg: max, column: timestamp}
        ctas:
          - {id: kickoff, name: Kickoff call, type: Lifecycle, priority: High, on: enter,
             stage: A, due_days: 7, owner: csm, playbook: onboarding}
          - {id: stuck, name: Overdue, on: overdue, stage: A, due_days: 3}
          - {id: quiet, name: Quiet, on: when, when: "days_since(last_seen) > 14"}
        playbooks:
          onboarding:
            - {task: Send welcome pack, due_days: 1}
            - {task: Hold kickoff call, due_days: 7}
        """)
    rules = parse_rules(text)
    assert [c.id for c in rules.ctas] == ["kickoff", "stuck", "quiet"]
    assert rules.playbooks["onboarding"][1].task == "Hold kickoff call"
    assert rules.customer_column("customer_id") == "Account ID"


def test_unknown_key_suggests_the_closest_one_with_line() -> None:
    [p] = problems_of(MINIMAL.replace("expected_days: 10", "expected_dayz: 10"))
    assert p.message == "unknown key 'expected_dayz'"
    assert p.hint == "did you mean 'expected_days'?"
    assert p.line == 3
    assert p.path == "stages[0].expected_dayz"
    assert p.file == "rules.yaml"


def test_every_problem_is_reported_at_once() -> None:
    text = """\
    version: 1
    stages:
      - name: A
        expected_dayz: 3
      - {name: B}
    initial_stage: C
    transitions:
      - {id: x, from: A, to: B, when: "a >"}
      - {id: x, from: B, to: B, when: "TRUE"}
      - {id: y, from: Q, to: B, when: "TRUE", priorty: 3}
    metrics:
      m: {agg: cnt}
    """
    problems = problems_of(text)
    rendered = "\n".join(p.render() for p in problems)
    assert "unknown key 'expected_dayz'" in rendered
    assert "unknown stage 'C'" in rendered
    assert "cannot parse 'a >'" in rendered
    assert "duplicate transition id 'x'" in rendered
    assert "from 'B' to itself" in rendered
    assert "unknown stage 'Q'" in rendered
    assert "did you mean 'priority'?" in rendered
    assert "did you mean 'count'?" in rendered
    # each problem carries its own line, in file order
    lines = [p.line for p in problems]
    assert lines == sorted(lines) and None not in lines
    by_message = {p.message: p for p in problems}
    assert by_message["unknown stage 'Q'"].rule_id == "y"
    assert by_message["unknown stage 'Q'"].line == 10


def test_unknown_stage_names_the_closest() -> None:
    [p] = problems_of(MINIMAL.replace("to: B", "to: b"))
    assert p.message == "unknown stage 'b'"
    assert p.hint == "did you mean 'B'?"
    assert p.rule_id == "go"


def test_duplicate_stage_names() -> None:
    problems = problems_of(MINIMAL.replace("- {name: B}", "- {name: A}"))
    assert any("duplicate stage name 'A'" in p.message for p in problems)


def test_yaml_syntax_error_gives_the_line() -> None:
    [p] = problems_of("version: 1\nstages: [\n  - name: A\n")
    assert p.message.startswith("YAML syntax error")
    assert p.line == 3


def test_python_tags_are_refused_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'version: 1\nstages: !!python/object/apply:os.system ["touch {marker}"]\n'
    [p] = problems_of(text)
    assert "tag" in p.message and "not allowed" in p.message
    assert p.line == 2
    assert not marker.exists()


def test_duplicate_yaml_keys_are_an_error() -> None:
    problems = problems_of(MINIMAL + "initial_stage: B\n")
    assert any("duplicate key 'initial_stage'" in p.message for p in problems)


def test_derived_may_only_use_values_above() -> None:
    text = MINIMAL + 'derived:\n  a: "b > 1"\n  b: "days_in_stage + 1"\n'
    [p] = problems_of(text)
    assert "defined further down" in p.message
    assert p.rule_id == "a"


def test_cta_checks() -> None:
    text = MINIMAL + textwrap.dedent("""\
        ctas:
          - {id: c1, name: x, on: enter}
          - {id: c1, name: y, on: when}
          - {id: c3, name: z, on: enter, stage: A, playbook: onbording}
        playbooks:
          onboarding: [{task: t}]
        """)
    rendered = "\n".join(p.render() for p in problems_of(text))
    assert "needs a `stage`" in rendered
    assert "needs a `when` condition" in rendered
    assert "duplicate CTA id 'c1'" in rendered
    assert "unknown playbook 'onbording'" in rendered and "did you mean 'onboarding'?" in rendered


def test_metric_column_rules() -> None:
    text = MINIMAL + "metrics:\n  a: {agg: sum}\n  b: {agg: count, column: x}\n"
    rendered = "\n".join(p.render() for p in problems_of(text))
    assert "`sum` needs a `column`" in rendered
    assert "`count` counts rows and takes no `column`" in rendered


def test_bad_timezone_and_builtin_names() -> None:
    text = (
        MINIMAL.replace("version: 1", "version: 1\ntimezone: Europe/Berln")
        + 'derived:\n  stage: "1 + 1"\n'
    )
    rendered = "\n".join(p.render() for p in problems_of(text))
    assert "unknown time zone 'Europe/Berln'" in rendered
    assert "did you mean 'Europe/Berlin'?" in rendered
    assert "'stage' is a built-in name" in rendered


def test_when_may_be_a_yaml_boolean() -> None:
    rules = parse_rules(MINIMAL.replace('when: "days_in_stage > 3"', "when: true"))
    assert rules.transitions[0].when == "TRUE"


def test_missing_file_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules file not found"):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(RulesError, match="a rules file is a YAML mapping"):
        load_rules(tmp_path / "list.yaml")


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = MINIMAL + textwrap.dedent("""\
        x-base: &base {agg: count, window_days: 30}
        metrics:
          logins: {<<: *base, window_days: 7}
        """)
    problems = problems_of(text)
    # the only problem is the unknown top-level key, not a "duplicate" window_days
    assert [p.message for p in problems] == ["unknown key 'x-base'"]


def test_metric_where_reads_usage_columns_not_metrics() -> None:
    text = MINIMAL + 'metrics:\n  a: {agg: count}\n  b: {agg: count, where: "a > 1"}\n'
    [p] = problems_of(text)
    assert p.message.startswith("'a' is a metric; a metric's `where` reads the usage")


def test_compliance_section_defaults_and_given_keys() -> None:
    rules = parse_rules(MINIMAL)
    c = rules.compliance
    assert (c.stuck_factor, c.no_usage_days, c.strict_order, c.fail_on) == (2.0, 30, False, [])
    assert not c.given("owner_column")
    rules = parse_rules(MINIMAL + "compliance:\n  owner_column: null\n  strict_order: [A, B]\n")
    assert rules.compliance.given("owner_column") and rules.compliance.owner_column is None
    assert rules.compliance.strict_order == ["A", "B"]


def test_compliance_problems_name_the_key_and_suggest() -> None:
    text = MINIMAL + textwrap.dedent("""\
        compliance:
          stuck_factr: 3
          no_usage_days: 0
          renewal_stage: b
          exempt_stages: [Zz]
          strict_order: [A]
          fail_on: [overdu, any]
        """)
    problems = problems_of(text)
    by_path = {p.path: p for p in problems}
    assert by_path["compliance.stuck_factr"].hint == "did you mean 'stuck_factor'?"
    assert by_path["compliance.stuck_factr"].line == 10
    assert "greater than or equal to 1" in by_path["compliance.no_usage_days"].message
    assert by_path["compliance.renewal_stage"].message == "unknown stage 'b'"
    assert by_path["compliance.renewal_stage"].hint == "did you mean 'B'?"
    assert by_path["compliance.exempt_stages[0]"].hint == "did you mean 'Z'?"
    assert "at least two stages" in by_path["compliance.strict_order"].message
    assert by_path["compliance.fail_on[0]"].message == "unknown finding 'overdu'"
    assert by_path["compliance.fail_on[0]"].hint == "did you mean 'overdue'?"
    assert by_path["compliance.fail_on[0]"].line == 15


def test_compliance_strict_order_names_each_stage_once() -> None:
    [p] = problems_of(MINIMAL + "compliance: {strict_order: [A, B, A]}\n")
    assert p.message == "'A' is named twice in strict_order"
    assert p.path == "compliance.strict_order[2]"


def test_the_report_main_path_defaults_to_the_stages_before_risk_or_terminal() -> None:
    assert parse_rules(MINIMAL).main_path == ["A", "B"]  # Z is terminal
    risky = MINIMAL.replace("  - {name: Z, terminal: true}\n",
                            "  - {name: Risk}\n  - {name: C}\n  - {name: Z, terminal: true}\n")
    risky += '  - {id: risk, from: "*", to: Risk, when: "days_in_stage > 9"}\n'
    rules = parse_rules(risky)
    assert rules.main_path == ["A", "B"]  # anyone can fall into Risk: the path ends before
    assert (rules.report.main_path, rules.report.min_exits) == (None, 10)
    written = parse_rules(risky + "report: {main_path: [A, B, C, Z], min_exits: 3}\n")
    assert written.main_path == ["A", "B", "C", "Z"] and written.report.min_exits == 3


def test_report_problems_name_the_key_and_suggest() -> None:
    problems = problems_of(MINIMAL + textwrap.dedent("""\
        report:
          main_path: [A, b, A, Z, B]
          min_exit: 5
        """))
    by_path = {p.path: p for p in problems}
    assert by_path["report.min_exit"].hint == "did you mean 'min_exits'?"
    assert by_path["report.min_exit"].line == 11
    assert by_path["report.main_path[1]"].message == "unknown stage 'b'"
    assert by_path["report.main_path[1]"].hint == "did you mean 'B'?"
    assert by_path["report.main_path[1]"].line == 10
    problems = problems_of(MINIMAL + "report: {main_path: [A, b, A, Z, B]}\n")
    messages = {p.path: p.message for p in problems}
    assert messages == {
        "report.main_path[1]": "unknown stage 'b'",
        "report.main_path[2]": "'A' is named twice in main_path",
        "report.main_path[3]": "'Z' is a terminal stage: only the last stage of main_path "
                               "may be one",
    }
    [p] = problems_of(MINIMAL + "report: {main_path: [A]}\n")
    assert p.message == "main_path needs at least two stages, in the order customers pass them"
    [p] = problems_of(MINIMAL + "report: {min_exits: 0}\n")
    assert p.path == "report.min_exits" and "greater than or equal to 1" in p.message


# -- YAML in our words, and documents whose cost is bounded ---------------------------------

@pytest.mark.parametrize(("text", "line", "message", "hint"), [
    (MINIMAL.replace("from: A", "from: *"), 8,
     "a value that starts with * must be in quotes", 'write from: "*" with the quotes'),
    ("version: 1\nstages:\n  - name: A\n   expected_days: 3\n", 4,
     "this line is indented 3 spaces: it is out of line with the list it belongs to (line 3, "
     "indented 2 spaces)", "start in the same column"),
    ("version: 1\nstages:\n  - name: A\n  name: B\n", 4,
     "a key where the list of line 3 expects its next - item", "start a new item with -"),
    ("version: 1\n  stages: []\n", 2, "this key is indented under a value",
     "line it up with the keys above it"),
    ("version: 1\n\tstages: []\n", 2, "a tab character", "replace the tab with spaces"),
    ("version: 1\nname: Renewal: Q3\n", 2, "a value that contains ': ' must be in quotes",
     "double quotes"),
    ('version: 1\nname: "B2B\nstages: []\n', 2, "the quote opened on line 2 is not closed",
     "close it"),
    ("version: 1\nstages: [{name: A}, {name: B}\ninitial_stage: A\n", 3,
     "the [ opened on line 2 is not closed where expected", "close it with ]"),
    ("version: 1\nname: *nope\n", 2, "*nope names no anchor &nope", '"*nope"'),
    ('version: 1\nname: "a" b\n', 2, "text follows a quoted value on the same line",
     "quote the whole value"),
    ("version: 1\nname: @me\n", 2, "a value that starts with @ must be in quotes", '"@..."'),
    ("version: 1\n---\nname: x\n", 2, "more than one YAML document", "remove the second ---"),
], ids=["unquoted-star", "indent", "key-in-list", "key-under-value", "tab", "colon-in-value",
        "unclosed-quote", "unclosed-bracket", "undefined-alias", "text-after-quote",
        "at-sign", "two-documents"])
def test_yaml_syntax_errors_in_our_words(text: str, line: int, message: str, hint: str) -> None:
    [p] = problems_of(text)
    assert p.message.startswith("YAML syntax error: ") and message in p.message
    assert p.line == line and hint in (p.hint or "")
    for pyyaml_words in ("while scanning", "while parsing", "expected <block end>", "token"):
        assert pyyaml_words not in p.message


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """`levels` levels of `width` aliases each: 9 x 9 stands for 387,420,489 values."""
    lines = ["version: 1", "x0: &x0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * width) + "]"
              for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_is_refused_fast_and_small() -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        [p] = problems_of(alias_bomb())
        seconds = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seconds < 1 and peak < 20_000_000
    assert "the aliases in this file stand for more than 10,000 values" in p.message
    assert p.line == 6 and "write the values out" in (p.hint or "")


def test_aliases_within_the_budget_load() -> None:
    text = MINIMAL + "metrics:\n  base: &b {agg: count, window_days: 30}\n" + "".join(
        f"  m{i}: {{<<: *b, where: \"event = 'e{i}'\"}}\n" for i in range(200))
    assert len(parse_rules(text).metrics) == 201
    assert len(load_yaml(alias_bomb(levels=3, width=9)).data["x3"]) == 9


def test_an_alias_inside_the_value_it_names_is_refused() -> None:
    [p] = problems_of(MINIMAL + "name: &loop [a, *loop]\n")
    assert "the alias *loop is inside the value &loop names" in p.message and p.line == 9


def test_yaml_nesting_is_bounded() -> None:
    [p] = problems_of("version: 1\nname: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert "nest more than 64 levels deep" in p.message and p.line == 2


@pytest.mark.parametrize("when", [
    "(" * 10_000 + "days_in_stage > 3" + ")" * 10_000,
    "NOT " * 10_000 + "days_in_stage > 3",
    " AND ".join(["days_in_stage > 3"] * 10_000),
], ids=["parentheses", "nots", "ands"])
def test_expressions_nested_deep_are_refused_with_file_line_and_rule(when: str) -> None:
    [p] = problems_of(MINIMAL.replace('"days_in_stage > 3"', f'"{when}"'))
    assert (p.file, p.line, p.path, p.rule_id) == ("rules.yaml", 8, "transitions[0].when", "go")
    assert re.search("nests? more than", p.message) and "split it" in (p.hint or "")
