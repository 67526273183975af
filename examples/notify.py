#!/usr/bin/env python3
"""Tell people when a nightly lifecycle job needs them: a small, standalone example.

Reads the JSON summary that `lifecycle run|backfill|check --summary-json FILE` writes
(also when the command fails), turns it into a short message and posts it to a chat
webhook as {"text": "..."} (Slack, Mattermost, Microsoft Teams and Google Chat incoming
webhooks take that), or prints it when no webhook is given, so that cron mails it.

    python notify.py logs/last-run.json --webhook https://hooks.example.com/T0/B0/x
    LIFECYCLE_WEBHOOK=https://... python notify.py logs/last-check.json

Exit status: 0 when the message went out (or was printed), 1 when the webhook could not
be reached (the message then goes to standard error, for cron's mail). Python's standard
library only: copy it next to your rules and adapt the wording.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SHOWN = 10  # problems listed in one message


def message(summary: dict[str, Any], title: str) -> str:
    """The text people read: what ran, for which day, and what to do."""
    command = summary.get("command") or "job"
    day = summary.get("as_of") or "?"
    head = f"{title} {command} for {day}"
    status = summary.get("status")
    if status == "ok":
        moved = summary.get("customers_moved")
        return f"{head}: ok" + (f", {moved:,} customers moved" if moved is not None else "")
    if status == "failed" and command == "notify":  # digests not delivered (exit 1)
        failed = [d for d in summary.get("deliveries") or [] if d.get("status") == "failed"]
        lines = [f"{head}: {len(failed)} digest(s) not delivered; the next run retries them"]
        lines += [f"- {d.get('owner')} ({d.get('channel')}): {d.get('error')}"
                  for d in failed[:SHOWN]]
        return "\n".join(lines)
    if status == "failed":  # `check` found what it was told to fail on (exit 3)
        counts = summary.get("findings") or {}
        found = ", ".join(f"{kind} {counts.get(kind, '?')}" for kind in summary.get(
            "failed_on", []))
        where = ", ".join(summary.get("outputs") or []) or "the findings table"
        return f"{head} found what it fails on: {found}. See {where}."
    problems = summary.get("problems") or []
    lines = [f"{head} failed (exit {summary.get('exit_code', '?')}), nothing was written: "
             f"{len(problems)} problem(s)"]
    for problem in problems[:SHOWN]:
        where = ", ".join(str(problem[k]) for k in ("file", "line", "path", "rule_id",
                                                     "column") if problem.get(k) is not None)
        line = f"- {where}: {problem.get('message')}" if where else f"- {problem.get('message')}"
        if problem.get("hint"):
            line += f" (hint: {problem['hint']})"
        lines.append(line)
    if len(problems) > SHOWN:
        lines.append(f"- ... and {len(problems) - SHOWN} more")
    return "\n".join(lines)


def read_summary(path: Path, title: str) -> str:
    try:
        return message(json.loads(path.read_text(encoding="utf-8")), title)
    except (OSError, ValueError, AttributeError, TypeError) as err:
        # a command line so wrong that the job never started leaves no summary
        return f"{title} failed and left no readable summary in {path} ({err}); see its log"


def post(url: str, text: str, timeout: float) -> None:
    request = urllib.request.Request(
        url, data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", type=Path, help="the --summary-json file")
    parser.add_argument("--webhook", default=os.environ.get("LIFECYCLE_WEBHOOK"),
                        help="incoming-webhook URL (default: $LIFECYCLE_WEBHOOK); "
                        "without one the message is printed")
    parser.add_argument("--title", default="lifecycle", help="how the message starts")
    parser.add_argument("--timeout", type=float, default=10, help="seconds to wait")
    args = parser.parse_args(argv)
    text = read_summary(args.summary, args.title)
    if not args.webhook:
        print(text)
        return 0
    try:
        post(args.webhook, text, args.timeout)
    except (urllib.error.URLError, OSError) as err:
        print(f"could not post to the webhook ({err}); the message was:\n{text}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
