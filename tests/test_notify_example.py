"""examples/notify.py, the cron recipe's alert: real summaries from real failed runs, sent
to a real HTTP server on this machine, or printed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_util import AS_OF, FIXTURE, ROOT, RULES, lifecycle
from webhook_util import json_webhook

NOTIFY = ROOT / "examples" / "notify.py"


def notify(*args: str | Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, NOTIFY, *map(str, args)], capture_output=True,
                          text=True, timeout=60, env=env)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    """A chat webhook on localhost: the URL, and the JSON bodies it was sent."""
    with json_webhook("/hooks/lifecycle") as hook:
        yield hook


def failed_run_summary(tmp_path: Path) -> Path:
    summary = tmp_path / "last-run.json"
    result = lifecycle("run", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--out",
                       tmp_path / "out", "--max-moves", "0", "--summary-json", summary)
    assert result.returncode == 1
    return summary


def test_a_failed_run_is_posted_to_the_webhook_with_its_problems(
        tmp_path: Path, webhook: tuple[str, list[dict]]) -> None:
    url, received = webhook
    proc = notify(failed_run_summary(tmp_path), "--webhook", url)
    assert proc.returncode == 0, proc.stderr
    [body] = received
    text = body["text"]
    assert text.startswith(f"lifecycle run for {AS_OF} failed (exit 1), nothing was written")
    assert "more than --max-moves 0 allows" in text and "(hint: " in text


def test_a_failed_check_names_the_findings_and_the_table(
        tmp_path: Path, webhook: tuple[str, list[dict]]) -> None:
    summary = tmp_path / "last-check.json"
    result = lifecycle("check", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--out",
                       tmp_path / "findings", "--fail-on", "no_usage", "--summary-json", summary)
    assert result.returncode == 3
    url, received = webhook
    env = {"LIFECYCLE_WEBHOOK": url, "PATH": ""}  # the URL from the environment
    assert notify(summary, env=env).returncode == 0
    [body] = received
    assert body["text"].startswith(f"lifecycle check for {AS_OF} found what it fails on: "
                                   "no_usage ")
    assert str(tmp_path / "findings" / "findings.csv") in body["text"]


def test_without_a_webhook_the_message_is_printed_for_cron_to_mail(tmp_path: Path) -> None:
    proc = notify(failed_run_summary(tmp_path), env={"PATH": ""})
    assert proc.returncode == 0 and proc.stdout.startswith("lifecycle run for 2026-11-01 failed")


def test_a_webhook_that_cannot_be_reached_exits_1_and_keeps_the_message(
        tmp_path: Path) -> None:
    proc = notify(failed_run_summary(tmp_path), "--webhook", "http://127.0.0.1:9/nothing")
    assert proc.returncode == 1
    assert "could not post to the webhook" in proc.stderr
    assert "more than --max-moves 0 allows" in proc.stderr


def test_a_job_that_left_no_summary_still_gets_a_message(tmp_path: Path) -> None:
    proc = notify(tmp_path / "never-written.json", env={"PATH": ""})
    assert proc.returncode == 0
    assert "left no readable summary" in proc.stdout and "see its log" in proc.stdout


def test_the_cron_recipes_name_the_shipped_script() -> None:
    for page in (ROOT / "README.md", ROOT / "docs" / "nightly.md", ROOT / "docs" / "check.md"):
        text = page.read_text()
        assert "notify.py" in text and "examples/notify.py" in text, page


def test_a_notify_that_failed_names_the_owners(tmp_path: Path,
                                               webhook: tuple[str, list[dict]]) -> None:
    state, summary = tmp_path / "state", tmp_path / "last-notify.json"
    assert lifecycle("run", *FIXTURE, "--rules", RULES, "--as-of", AS_OF, "--state", state,
                     "--out", tmp_path / "out", "--quiet").returncode == 0
    done = lifecycle("notify", "--state", state, "--eml", tmp_path / "mail",
                     "--summary-json", summary)  # no --addresses: nobody has one
    assert done.returncode == 1
    url, received = webhook
    assert notify(summary, "--webhook", url).returncode == 0
    [body] = received
    assert body["text"].startswith(f"lifecycle notify for {AS_OF}: ")
    assert "digest(s) not delivered; the next run retries them" in body["text"]
    assert "(eml): no email address" in body["text"]
