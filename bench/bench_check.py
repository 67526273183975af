"""`lifecycle check --state` on a 1M-customer state, this code against another's.

Times, each in a fresh process (Python start and imports included), for each as-of date:

    lifecycle check --customers D/customers.parquet --rules rules/default.yaml
        --as-of DATE --state S --out O --fail-on none --quiet

with the Python of this worktree ("new") and, with ``--before-python``, another
interpreter whose installed `lifecycle_cli` is the code to compare with ("old"; e.g.
the main branch's virtualenv), alternated, and checks that both write the same
findings. The state is copied first (check only reads it; the copy makes sure).

The state is what ``lifecycle run ... --state S`` of 2026-11-01 writes on bench_run.py's
data set; ``--as-of 2026-11-01`` re-checks that date (the day starts from no earlier
date, the metrics are the ones the state kept), a later date starts from the state's
stages and CTA snapshot (no metrics kept: every metric takes its default).

Usage: python bench/bench_check.py --data D --state S [--as-of 2026-11-01,2026-11-02]
       [--repeat 3] [--before-python /path/to/venv/bin/python]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUN = "import sys; from lifecycle_cli.cli import main; sys.argv[0] = 'lifecycle'; main()"


def measured(cmd: list[str], cwd: Path) -> tuple[float, float, float, int, str]:
    """Run cmd in a fresh process: (wall seconds, CPU seconds (user + system, all threads),
    peak RSS MiB, exit code, stderr tail)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
    err = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    tail = err.decode("utf-8", "replace").strip().splitlines()[-10:]
    return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
            os.waitstatus_to_exitcode(status), "\n".join(tail))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="bench_run.py's data set (customers.parquet)")
    parser.add_argument("--state", type=Path, required=True, help="a 1M-customer state folder")
    parser.add_argument("--as-of", default="2026-11-01,2026-11-02")
    parser.add_argument("--rules", type=Path, default=REPO / "rules" / "default.yaml")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before-python", type=Path, default=None,
                        help="the interpreter of the code to compare with")
    args = parser.parse_args()
    pythons = {"new": Path(sys.executable)}
    if args.before_python is not None:
        pythons = {"old": args.before_python, **pythons}
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        work = Path(tmp)
        state = work / "state"
        shutil.copytree(args.state, state)
        failed = False
        for as_of in args.as_of.split(","):
            times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in pythons}
            for r in range(args.repeat):
                for label, python in pythons.items():
                    out = work / f"{label}-{as_of}"
                    shutil.rmtree(out, ignore_errors=True)
                    cmd = [str(python), "-c", RUN, "check",
                           "--customers", str(args.data.resolve() / "customers.parquet"),
                           "--rules", str(args.rules.resolve()), "--as-of", as_of,
                           "--state", str(state), "--out", str(out), "--fail-on", "none",
                           "--quiet"]
                    wall, cpu, rss, code, tail = measured(cmd, work)  # cwd: no code on sys.path
                    print(f"{as_of} {label} run {r + 1}: {wall:.2f} s, CPU {cpu:.2f} s, "
                          f"{rss:,.0f} MiB"
                          + ("" if code == 0 else f" (exit {code})\n{tail}"), flush=True)
                    failed |= code != 0
                    times[label].append((wall, cpu, rss))
            for label, runs in times.items():
                print(f"{as_of} {label}: median {statistics.median(w for w, _, _ in runs):.2f} s, "
                      f"CPU {statistics.median(c for _, c, _ in runs):.2f} s, "
                      f"{statistics.median(m for _, _, m in runs):,.0f} MiB")
            if len(pythons) == 2:
                old = (work / f"old-{as_of}" / "findings.csv").read_bytes()
                new = (work / f"new-{as_of}" / "findings.csv").read_bytes()
                same = old == new
                print(f"{as_of}: findings {'identical' if same else 'DIFFER'}")
                failed |= not same
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
