"""`lifecycle completion SHELL`: the script that makes the shell complete commands,
options, choices and file names."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from . import common

PROG = "lifecycle"
COMPLETE_VAR = "_LIFECYCLE_COMPLETE"  # what the script sets when it asks us


class Shell(str, Enum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


INSTALL = {
    Shell.bash: "lifecycle completion bash > ~/.local/share/bash-completion/completions/lifecycle",
    Shell.zsh: 'lifecycle completion zsh > "${fpath[1]}/_lifecycle"',
    Shell.fish: "lifecycle completion fish > ~/.config/fish/completions/lifecycle.fish",
    Shell.powershell: "lifecycle completion powershell >> $PROFILE",
}


def register(app: typer.Typer) -> None:
    app.command("completion", epilog=common.examples("lifecycle completion bash"))(completion)


@common.handle_errors
def completion(
    shell: Annotated[Shell, typer.Argument(help="The shell: bash, zsh, fish or powershell.",
                                           show_default=False)],
) -> None:
    """Print the script that makes your shell complete lifecycle's commands, options,
    choices (--format csv|parquet|xlsx) and file names.

    Install it once, then open a new shell. bash (with the bash-completion package):
    lifecycle completion bash > ~/.local/share/bash-completion/completions/lifecycle.
    zsh: lifecycle completion zsh > "${fpath[1]}/_lifecycle". fish: lifecycle completion
    fish > ~/.config/fish/completions/lifecycle.fish. PowerShell: lifecycle completion
    powershell >> $PROFILE. Nothing is installed for you: the script goes to standard
    output.
    """
    from typer.completion import get_completion_script

    typer.echo(get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR,
                                     shell=shell.value))
