"""`lifecycle` as a Spark application: ``spark-submit`` (or a Databricks job) runs this
file with the same options as `lifecycle run`::

    spark-submit --master yarn "$(python -m lifecycle_cli.cli.spark_job --path)" \\
        --rules rules/live.yaml --customers /data/crm.csv \\
        --usage table:analytics.events --as-of 2026-11-01 --out /data/out

The first argument may name the command (`run`, `backfill`); without one it is `run`.
``--engine spark`` is added when no ``--engine`` is given; the session is the one
spark-submit started (its master and ``--conf`` settings), which is left for spark-submit
to stop. ``--path`` prints this file's path, for the spark-submit line.
"""

from __future__ import annotations

import sys
from pathlib import Path

COMMANDS = ("run", "backfill")


def arguments(argv: list[str]) -> list[str]:
    """The `lifecycle` command line for spark-submit's arguments."""
    args = list(argv)
    if not args or args[0] not in (*COMMANDS, "--help", "-h"):
        args = ["run", *args]
    if "--engine" not in args and not any(a.startswith("--engine=") for a in args):
        args += ["--engine", "spark"]
    return args


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given == ["--path"]:
        print(Path(__file__).resolve())
        return
    from lifecycle_cli.cli import app  # absolute: spark-submit runs this file as a script

    app(args=arguments(given), prog_name="lifecycle")


if __name__ == "__main__":
    main()
