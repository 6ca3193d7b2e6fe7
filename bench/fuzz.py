"""A longer schemathesis run than the suite's (tests/test_fuzz.py): every operation of the
OpenAPI schema (native, Spacely, Luw, Replicate, files, operations), valid and invalid requests,
with a key; valid examples for the operations that create jobs, and each job created followed
through its dialect's links (get, cancel, events). Prints the cases sent, the jobs created, the
statuses answered; fails on any 5xx or undocumented status, or when fewer than `--min-jobs` of the
cases created a job. `--examples` sizes the run (generated cases per operation).

    python bench/fuzz.py --examples 600 --timeout 300
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=600, help="generated cases per operation")
    parser.add_argument("--timeout", type=int, default=300, help="seconds before the run stops")
    parser.add_argument("--min-jobs", type=float, default=0.10,
                        help="the share of cases that must create a job")
    args = parser.parse_args()
    report = Path(tempfile.mkdtemp(prefix="roomrender-fuzz-")) / "statuses.json"
    env = {**os.environ, "ROOMRENDER_FUZZ_EXAMPLES": str(args.examples),
           "ROOMRENDER_FUZZ_REPORT": str(report),
           "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    started = time.monotonic()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
             "--hypothesis-show-statistics", str(ROOT / "tests" / "test_fuzz.py")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
        output, code = run.stdout + run.stderr, run.returncode
    except subprocess.TimeoutExpired as stopped:
        output = (stopped.stdout or b"").decode() if isinstance(stopped.stdout, bytes) else (stopped.stdout or "")
        code = 124
    seconds = time.monotonic() - started
    passing = sum(int(n) for n in re.findall(r"(\d+) passing", output))
    failing = sum(int(n) for n in re.findall(r"(\d+) failing", output))
    rejected = sum(int(n) for n in re.findall(r"(\d+) invalid", output))
    operations = re.search(r"(\d+) passed", output)
    figures = json.loads(report.read_text()) if report.exists() else {}
    statuses: dict[str, int] = figures.get("statuses", {})
    cases, jobs = figures.get("cases", 0), figures.get("jobs", 0)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"examples per operation: {args.examples}; wall time: {seconds:.0f} s")
    print(f"operations passed: {operations.group(1) if operations else '?'}; "
          f"cases sent: {cases} (hypothesis: {passing} passing, {failing} failing, "
          f"{rejected} filtered before sending), of which links followed: "
          f"{figures.get('linked', 0)}")
    share = jobs / cases if cases else 0.0
    print(f"jobs created: {jobs} ({share:.1%} of the cases)")
    print("statuses answered: " + ", ".join(f"{k}: {v}" for k, v in statuses.items()))
    server_errors = sum(v for k, v in statuses.items() if int(k) >= 500)
    print(f"5xx answers: {server_errors}")
    if code != 0:
        print(output[-4000:])
        print("FAILED" if code != 124 else "STOPPED at the timeout (the figures above are those "
                                           "of the cases sent until then)")
        return code
    if code == 0 and share < args.min_jobs:
        print(f"FAILED: fewer than {args.min_jobs:.0%} of the cases created a job")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
