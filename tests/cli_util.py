"""Running the real `lifecycle` command in a subprocess, as users do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
RULES = ROOT / "rules" / "default.yaml"
AS_OF = "2026-11-01"  # the day the fixture in tests/data speaks for
FIXTURE = ["--customers", DATA / "customers.csv", "--usage", DATA / "usage.csv"]


def run_args(out: Path, *extra: str | Path, customers: Path = DATA / "customers.csv") -> list:
    """`lifecycle run` on the fixture with the default rules, writing into ``out``."""
    return [
        "run",
        "--customers",
        customers,
        "--usage",
        DATA / "usage.csv",
        "--rules",
        RULES,
        "--as-of",
        AS_OF,
        "--out",
        out,
        *extra,
    ]


def lifecycle(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lifecycle_cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to show that nothing changed."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }
