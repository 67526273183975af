"""The HTML report in a real browser: headless Chromium loads it with no console message,
runs nothing from the data, and draws the charts (the screenshot is not blank)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_util import DATA, RULES
from report_util import EVIL_NAME, build_state, evil_export

from lifecycle_cli.render.html import render_html
from lifecycle_cli.render.svg import PALETTE
from lifecycle_cli.report.build import build_report, history_from_exports, history_from_state
from lifecycle_cli.rules.load import load_rules

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    found = os.environ.get("CHROMIUM") or next(
        (path for name in BROWSERS if (path := shutil.which(name))), None)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must test the HTML report in Chromium: .ci/run installs it")
        pytest.skip("no Chromium on this machine (apt-get install chromium): the HTML report "
                    "is not checked in a browser")
    return found


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120)


def console_messages(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """What the page wrote to the browser console (errors, CSP violations, failed loads)."""
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


def pixels_of(shot: Path, color: str) -> int:
    from PIL import Image

    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    with Image.open(shot) as image:
        colors = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(n for n, c in colors if c == rgb)


def test_the_dashboard_loads_cleanly_and_draws_its_charts(tmp_path: Path) -> None:
    state = build_state(tmp_path)
    history = history_from_state(state, load_rules(RULES), customers=DATA / "customers.csv")
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(history)))
    shot = tmp_path / "report.png"
    proc = chromium(page, tmp_path, "--window-size=1280,4000", f"--screenshot={shot}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc) == []
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 24) or []) > 100  # not blank
    # the first stages' colours fill bars, Sankey nodes, funnel steps and curves
    for color in PALETTE[:5]:
        assert pixels_of(shot, color) > 500, color


def test_markup_in_the_data_stays_text_in_the_browser(tmp_path: Path) -> None:
    customers, rules = evil_export(tmp_path)
    history = history_from_exports(load_rules(rules), customers, as_of=dt.date(2026, 11, 1))
    page = tmp_path / "evil.html"
    page.write_text(render_html(build_report(history)))
    proc = chromium(page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # an injected script would run and log, or be blocked by the page's policy and log that
    assert console_messages(proc) == []
    dom = proc.stdout
    assert "<script" not in dom.lower() and "<img" not in dom.lower()
    assert EVIL_NAME.replace("<", "&lt;").replace(">", "&gt;") in dom  # shown as text


def test_a_dashboard_split_by_a_column_loads_cleanly(tmp_path: Path) -> None:
    """--by: the side-by-side tables and the split tables, a group whose name is markup
    among them (the evil export's owners split it), load with no console message."""
    customers, rules = evil_export(tmp_path)
    history = history_from_exports(load_rules(rules), customers, as_of=dt.date(2026, 11, 1))
    page = tmp_path / "split.html"
    page.write_text(render_html(build_report(history, by="csm")))
    proc = chromium(page, tmp_path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_messages(proc) == []
    dom = proc.stdout
    assert "<img" not in dom.lower()
    assert "Customers by stage and csm" in dom and "Funnel by csm" in dom
    assert "Time in stage by csm: median / p90 days" in dom
