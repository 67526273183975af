"""The README documents every command the app registers, and the docs every option."""

from __future__ import annotations

import re

import pytest
from cli_util import ROOT, commands

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
