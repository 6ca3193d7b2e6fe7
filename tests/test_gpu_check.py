"""bench/gpu_check.sh (issue 33) cannot rot before a GPU comes: its --dry-run runs every step on
CPU (tiny random models, 64 px, 2 steps) through the same scripts, and writes the report a GPU run
would, figures and commands included."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.torch
def test_the_gpu_check_dry_run_runs_every_step_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "GPU_CHECK_WORK": str(tmp_path / "work"),
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = (out / "gpu_check.md").read_text()
    assert report.startswith("### cpu (dry run), ")
    assert "bench/gpu_check.sh --dry-run" in report.splitlines()[0]
    figures = {row["figure"]: row for row in json.loads((out / "gpu_check.json").read_text())["figures"]}
    for wanted in ("SD 1.5 plain eager b8: images/s", "SD 1.5 service / plain eager b8",
                   "SD 1.5 single job latency, idle server, p50 s", "live previews' share of a job's time",
                   "SDXL restyle, 1 image a job: images/s", "SDXL restyle, 4 images a job: images/s"):
        assert wanted in figures, sorted(figures)
        assert re.fullmatch(r"-?\d+\.\d+(x|%)?", figures[wanted]["value"]), figures[wanted]
        # Each figure's row in the report names the step whose command (listed above it) made it.
        assert f"| {wanted} | {figures[wanted]['value']} |" in report
    steps = json.loads((out / "gpu_check.json").read_text())["steps"]
    assert {steps[name]["outcome"] for name in ("sd15", "sdxl_single", "sdxl_batch")} == {"ok"}
    assert "bench/gpu.py" in steps["sd15"]["command"]
    # The families of this round: run where gpu_smoke lists them, else said to be not landed.
    for family in ("wan", "object_3d", "qwen_edit", "flux_schnell"):
        assert steps[f"family_{family}"]["outcome"] in ("ok", "not landed yet")
    assert (out / "gpu_check.log").read_text().count("== sd15:") == 2
