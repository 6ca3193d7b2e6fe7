"""A longer schemathesis run than the suite's (tests/test_fuzz.py): every operation of the
OpenAPI schema (native, Spacely, Luw, files, operations), valid and invalid requests, with a key.
Prints the cases run, the statuses answered, and any 5xx or undocumented status (the run fails).

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
    statuses = json.loads(report.read_text()) if report.exists() else {}
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"examples per operation: {args.examples}; wall time: {seconds:.0f} s")
    print(f"operations passed: {operations.group(1) if operations else '?'}; "
          f"cases sent: {sum(statuses.values())} (hypothesis: {passing} passing, {failing} failing, "
          f"{rejected} filtered before sending)")
    print("statuses answered: " + ", ".join(f"{k}: {v}" for k, v in statuses.items()))
    server_errors = sum(v for k, v in statuses.items() if int(k) >= 500)
    print(f"5xx answers: {server_errors}")
    if code != 0:
        print(output[-4000:])
        print("FAILED" if code != 124 else "STOPPED at the timeout")
    return code


if __name__ == "__main__":
    sys.exit(main())
