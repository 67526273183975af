"""`--engine spark` as users meet it: the options, what is missing (pyspark, Java), a master
Spark can't use, a quiet terminal, and the spark-submit entry running the same job.

Where starting a JVM (or failing to) is under test, the command runs as a process
(`lifecycle_process`, spark-submit): its exit status and its stderr are what is tested."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import spark_util
from cli_util import AS_OF, ENV, RULES, lifecycle, lifecycle_process
from conftest import write_csv
from spark_util import MASTER

from lifecycle_cli.cli.spark_job import arguments

pytestmark = pytest.mark.spark

# a small rules file: a real process starts a JVM and compiles each query cold, so the
# tests that run one keep the SQL short
TINY_RULES = """\
version: 1
stages: [{name: Trial}, {name: Active}, {name: Quiet}]
initial_stage: Trial
max_hops: 2
metrics:
  logins_30d: {agg: count, where: "event = 'login'", window_days: 30}
transitions:
  - {id: active, from: Trial, to: Active, when: "logins_30d >= 2"}
  - {id: quiet, from: Active, to: Quiet, when: "logins_30d = 0"}
ctas:
  - {id: welcome, name: Welcome, on: enter, stage: Active, owner: csm, due_days: 3}
"""

CUSTOMERS = [
    {"customer_id": "C1", "name": "Acme", "csm": "ann", "stage": "Onboarding",
     "stage_entered_at": "2026-08-01", "renewal_date": "2027-06-01", "health_score": 80,
     "status": "active", "churn_notice": False, "trained": True, "arr": 1000},
    {"customer_id": "C2", "name": "Globex", "csm": "bob", "stage": "Launched",
     "stage_entered_at": "2026-10-01", "renewal_date": "2026-12-15", "health_score": 30,
     "status": "active", "churn_notice": False, "trained": True, "arr": 2000},
    {"customer_id": "C3", "name": "Initech", "csm": "ann", "stage": None,
     "stage_entered_at": None, "renewal_date": "2027-03-01", "health_score": 70,
     "status": "active", "churn_notice": False, "trained": False, "arr": 500},
]
USAGE = [{"customer_id": c, "timestamp": f"2026-10-{d:02d} 09:00:00", "user_id": f"u{u}",
          "event": "login", "minutes": 12}
         for c, d, u in (("C1", 20, 1), ("C1", 21, 2), ("C2", 28, 3), ("C3", 30, 4))]


@pytest.fixture
def exports(tmp_path: Path) -> list[str | Path]:
    customers = write_csv(tmp_path / "customers.csv", CUSTOMERS)
    usage = write_csv(tmp_path / "usage.csv", USAGE)
    return ["--customers", customers, "--usage", usage, "--rules", RULES, "--as-of", AS_OF]


@pytest.fixture
def tiny(tmp_path: Path, exports: list) -> list[str | Path]:
    """The exports with `TINY_RULES`."""
    rules = tmp_path / "tiny.yaml"
    rules.write_text(TINY_RULES)
    stages = {"Onboarding": "Trial", "Launched": "Active", None: None}
    customers = write_csv(tmp_path / "tiny-customers.csv",
                          [{**c, "stage": stages[c["stage"]]} for c in CUSTOMERS])
    args = list(exports)
    args[args.index("--rules") + 1] = rules
    args[args.index("--customers") + 1] = customers
    return args


def test_spark_options_need_the_spark_engine(exports: list) -> None:
    for option in (["--spark-master", "local[2]"], ["--spark-conf", "a=b"]):
        result = lifecycle("run", *exports, "--dry-run", *option)
        assert result.returncode == 2
        assert f"{option[0]} applies to --engine spark" in result.stderr
    result = lifecycle("run", *exports, "--dry-run", "--engine", "spark", "--spark-conf",
                       "spark.sql.session.timeZone=UTC")
    assert result.returncode == 2 and "is set by lifecycle" in result.stderr


def test_without_java_exit_2_says_what_to_install(exports: list, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle_cli", "run", *map(str, exports), "--out", str(out),
         "--engine", "spark"], capture_output=True, text=True, timeout=120,
        env={**env, **ENV, "PATH": str(Path(sys.executable).parent)})
    assert proc.returncode == 2, proc.stderr
    assert "Java was not found" in proc.stderr and "openjdk-17-jre-headless" in proc.stderr
    assert not out.exists()


def test_without_pyspark_exit_2_says_how_to_install_it(exports: list, tmp_path: Path) -> None:
    hide = tmp_path / "hide"
    (hide / "pyspark").mkdir(parents=True)
    (hide / "pyspark" / "__init__.py").write_text(
        "raise ImportError('hidden', name='pyspark')\n")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "lifecycle_cli", "run", *map(str, exports), "--out", str(out),
         "--engine", "spark"], capture_output=True, text=True, timeout=120,
        env={**os.environ, **ENV, "PYTHONPATH": str(hide)})
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "lifecycle-cli[spark]"' in proc.stderr and "Java 17" in proc.stderr
    assert not out.exists()


def test_a_master_spark_cannot_use_is_a_plain_error(exports: list) -> None:
    proc = lifecycle_process("run", *exports, "--dry-run", "--engine", "spark",
                             "--spark-master", "nowhere://x")
    assert proc.returncode == 2, proc.stderr
    assert "Spark did not start (--spark-master nowhere://x): Master must" in proc.stderr
    assert "--spark-master takes local" in proc.stderr
    assert "\tat " not in proc.stderr and "Traceback" not in proc.stderr


def test_a_spark_run_keeps_the_terminal_quiet_and_writes_what_polars_writes(
        tiny: list, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`lifecycle run --engine spark`: the summary and nothing of Spark's own on the
    terminal (the JVM's output, from its start on, goes to the log file: the session of
    this test run was started the way the command starts it), and the same output files
    as Polars."""
    from lifecycle_cli.sql import spark

    spark_util.start()
    capfd.readouterr()
    result = lifecycle("run", *tiny, "--out", tmp_path / "spark", "--engine", "spark",
                       "--spark-master", MASTER)
    assert result.returncode == 0, result.stderr
    assert "3 customers" in result.stderr
    written = capfd.readouterr()  # what reached the file descriptors: the JVM writes there
    for noise in ("WARN", "log4j", "WARNING: Using incubator", "[Stage", "SparkContext"):
        assert noise not in result.stderr and noise not in written.err + written.out
    log = spark.log_path().read_text(errors="replace")
    assert "log4j" in log or "WARNING: Using incubator" in log  # where the start-up went
    assert lifecycle("run", *tiny, "--out", tmp_path / "polars").returncode == 0
    for table in ("customers", "transitions", "ctas", "tasks"):
        spark_bytes = (tmp_path / "spark" / f"{table}.csv").read_bytes()
        assert spark_bytes == (tmp_path / "polars" / f"{table}.csv").read_bytes(), table


def test_spark_job_arguments() -> None:
    assert arguments(["--rules", "r.yaml"]) == ["run", "--rules", "r.yaml", "--engine",
                                                 "spark"]
    assert arguments(["backfill", "--from", "2026-10-01"])[:2] == ["backfill", "--from"]
    assert arguments(["run", "--engine", "duckdb"]) == ["run", "--engine", "duckdb"]


def test_spark_submit_runs_the_same_job(tiny: list, tmp_path: Path) -> None:
    """`spark-submit` with the entry file (examples/spark_submit.py imports the same):
    the outputs `lifecycle run` writes with Polars."""
    spark_submit = Path(sys.executable).parent / "spark-submit"
    if not spark_submit.exists():
        pytest.fail("pyspark's spark-submit is not beside this Python")
    entry = subprocess.run([sys.executable, "-m", "lifecycle_cli.cli.spark_job", "--path"],
                           capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, **ENV, "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    proc = subprocess.run(
        [str(spark_submit), "--master", MASTER, "--conf", "spark.ui.enabled=false", entry,
         *map(str, tiny), "--out", str(tmp_path / "submitted")],
        capture_output=True, text=True, timeout=300, env=env)
    # spark-submit passes the Python driver's stdout and stderr on as its own stdout
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "3 customers" in proc.stdout
    assert lifecycle("run", *tiny, "--out", tmp_path / "polars").returncode == 0
    for table in ("customers", "transitions", "ctas", "tasks"):
        got = (tmp_path / "submitted" / f"{table}.csv").read_bytes()
        assert got == (tmp_path / "polars" / f"{table}.csv").read_bytes(), table
