"""The README documents every command the app registers, and the docs every option."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from cli_util import ROOT, commands, lifecycle

README = (ROOT / "README.md").read_text()
DOCS = "\n".join([README, *(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))])


def commands_table() -> list[str]:
    """The commands in the README's table under "## Commands", in its order."""
    section = README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [line.split("`lifecycle ", 1)[1].split()[0].rstrip("`")
            for line in section.splitlines() if line.startswith("| `lifecycle ")]


@pytest.mark.parametrize("command", commands())
def test_every_command_is_in_the_readme_commands_table(command: str) -> None:
    assert command in commands_table(), f"README.md's Commands table lacks {command}"


def test_the_readme_names_only_registered_commands() -> None:
    assert sorted(commands_table()) == sorted(commands())


@pytest.mark.parametrize("command", commands())
def test_every_option_is_documented(command: str) -> None:
    params = commands()[command].params
    options = [opt for param in params for opt in param.opts
               if opt.startswith("--") and opt != "--help"]
    assert options or any(p.param_type_name == "argument" for p in params)
    missing = [opt for opt in options
               if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", DOCS)]
    assert missing == [], f"lifecycle {command}: not in README.md or docs/: {missing}"


def test_every_top_level_key_of_the_rules_is_in_the_rules_reference() -> None:
    """docs/rules.md's table of top-level keys names every key a rules file may have."""
    from lifecycle_cli.rules.model import Rules, field_names

    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    table = text[text.index("## Top-level keys"):text.index("## stages")]
    missing = [k for k in field_names(Rules) if f"| `{k}` |" not in table]
    assert not missing, f"docs/rules.md, Top-level keys: document {missing}"


def sessions_and_files(markdown: str) -> tuple[list[list[tuple[str, list[str]]]], dict[str, str]]:
    """The shell sessions of a page (``$ command`` then what it prints) and the files its
    examples define: a ```yaml block that starts with ``# NAME.yaml``, or a block after
    a line that ends in "this `NAME`:" or "(`NAME`):"."""
    sessions, files = [], {}
    blocks = re.finditer(r"(?P<before>[^\n]*)\n\n```(?P<lang>\w*)\n(?P<body>.*?)```",
                         markdown, re.S)
    for block in blocks:
        body = block["body"]
        named = re.search(r"(?:this|\() ?`([\w.-]+)`\)?:$", block["before"])
        first = re.match(r"# ([\w.-]+\.yaml)", body)
        if first or named:
            files[(first or named).group(1)] = body  # type: ignore[union-attr]
        elif block["lang"] == "text" and body.startswith("$ "):
            session: list[tuple[str, list[str]]] = []
            for line in body.splitlines():
                if line.startswith("$ "):
                    session.append((line[2:], []))
                else:
                    session[-1][1].append(line)
            sessions.append(session)
    return sessions, files


def test_the_rules_pages_sessions_print_what_the_tool_prints(tmp_path: Path) -> None:
    """docs/rules.md's `$ lifecycle validate ...` examples, run on the files the page
    defines (and the bundled sample data): the same messages, headings and exit codes."""
    sessions, files = sessions_and_files((ROOT / "docs" / "rules.md").read_text())
    assert len(sessions) >= 4 and {"broken.yaml", "health.yaml", "customers.csv"} <= set(files)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    for session in sessions:
        code = None
        for command, expected in session:
            if command == "echo $?":
                assert expected == [str(code)], command
                continue
            result = lifecycle(*shlex.split(command)[1:], cwd=tmp_path)
            code = result.returncode
            assert (result.stdout + result.stderr).splitlines() == expected, command
