#!/usr/bin/env bash
# Issue 33: every pipeline of roomrender on a real GPU, in one prepared run (~9 minutes on an
# H100/H200), with full-size architectures and random weights (the arithmetic of the real models).
#
#   sd15      SD 1.5 + ControlNet (M-LSD), 512², 20 steps: images/s through the whole service
#             (`roomrender serve`, 64 jobs POSTed at once: submit -> stored output, batching across
#             jobs) against plain diffusers eager and compiled at batch 8, in the same run; single
#             job latency on the idle server; live previews' share of a job's time; peak memory.
#             (bench/gpu.py --workloads bench; GPU_CHECK_SD15_WORKLOADS=bench,restyle adds the
#             packaged restyle: inpainting SD 1.5 + two ControlNets + UperNet.)
#   sdxl      SDXL + ControlNet Union (restyle), 1024², 30 steps: single-job latency (1 image, warm)
#             and images/s (4 images a job, warm), peak memory (bench/gpu_smoke.py --family sdxl).
#   families  every family bench/gpu_smoke.py lists among wan (video), object_3d, qwen_edit,
#             flux_schnell (the families of this round, as they land): seconds per task, warm,
#             and peak memory. A family not listed yet is reported as such, not run.
#
# Usage (from anywhere; it runs in the repository root):
#   bench/gpu_check.sh                     # on the GPU host: everything
#   bench/gpu_check.sh --only sd15         # a part (sd15, sdxl, families; comma-separated)
#   bench/gpu_check.sh --dry-run           # the same steps on CPU: tiny random models, 64 px, 2 steps
#   bench/gpu_check.sh --fetch-wheels      # here, with network: the wheels a bare GPU host lacks, into .whl/
#
# Figures go to stdout and to $OUT/gpu_check.md (a section to paste into bench/RESULTS.md, headed
# with the GPU's name and the date, each figure with the command that produced it), the whole log
# to $OUT/gpu_check.log and the raw numbers to $OUT/gpu_check.json. OUT defaults to ./gpu_out.
# On a bare host, the Python packages missing there are installed from .whl/ (if carried) into
# /tmp/site. Each step has its own time limit (GPU_CHECK_LIMIT_<STEP> seconds); a step that fails
# or runs out of time is reported as such and the others still run. Exit status: 0 if every step
# ran, 1 if one failed.

set -uo pipefail

DRY=0
ONLY="sd15,sdxl,families"
FETCH=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --only) ONLY="$2"; shift ;;
        --only=*) ONLY="${1#--only=}" ;;
        --fetch-wheels) FETCH=1 ;;
        -h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
WORK="${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu-check.XXXXXX)}"
mkdir -p "$WORK"

if [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -c "import torch" 2>/dev/null; then
    PY="$ROOT/.venv/bin/python"
else
    PY="${PYTHON:-python3}"
fi

# -- wheels for a bare GPU host ---------------------------------------------------------------------
# The packages the GPU host's image already holds (/work/.library/device/KINDS.md): never carried.
DEVICE_HAS="torch triton numpy pillow httpx httpcore h11 anyio idna certifi click typer rich shellingham \
pygments markdown-it-py mdurl packaging typing-extensions tqdm filelock fsspec jinja2 markupsafe pyyaml \
safetensors huggingface-hub hf-xet tokenizers transformers accelerate peft regex requests urllib3 \
charset-normalizer opencv-python-headless networkx sympy mpmath attrs prometheus-client psutil setuptools \
six python-dateutil wrapt protobuf uvloop scipy"
# Loaded here but not by the bench (S3 storage is imported lazily; the rest come with other
# libraries' optional paths): left out, so the wheels stay within the 64 MiB a call carries.
NOT_CARRIED="boto3 botocore s3transfer jmespath kernels httpx2 httpcore2 truststore watchfiles"

if [ "$FETCH" = 1 ]; then
    # Every distribution the bench's imports load, at the version installed here, less what the
    # host has: roomrender's service, the diffusers engine and its families' libraries.
    NEEDED="$("$PY" - "$DEVICE_HAS $NOT_CARRIED" <<'PYEOF'
import importlib, importlib.metadata as md, sys
for name in ["roomrender.cli", "roomrender.app", "roomrender.services", "roomrender.engines.diffusers.engine",
             "diffusers", "uvicorn", "compel"]:
    try:
        importlib.import_module(name)
    except Exception as error:  # a library the venv lacks is not carried either
        print(f"# {name}: {error}", file=sys.stderr)
owners = md.packages_distributions()
has = {n.lower().replace("_", "-") for n in sys.argv[1].split()}
found = set()
for module in list(sys.modules):
    for dist in owners.get(module.split(".")[0], []):
        key = dist.lower().replace("_", "-")
        if key not in has and key != "roomrender" and not key.startswith("nvidia-"):
            found.add(f"{dist}=={md.version(dist)}")
print("\n".join(sorted(found)))
PYEOF
)"
    mkdir -p .whl
    for spec in $NEEDED; do
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform manylinux_2_24_x86_64 \
            -d .whl "$spec" || echo "gpu_check.sh: no wheel for $spec" >&2
    done
    echo "wheels in .whl/ ($(du -sh .whl | cut -f1)): carry it (run's carry: [\".whl\"])"
    exit 0
fi

# Runs roomrender from src/ whether or not it is installed.
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
if ! "$PY" -c "import roomrender.app, diffusers, torch" 2>/dev/null; then
    if [ -d "$ROOT/.whl" ]; then
        echo "installing the carried wheels into /tmp/site..."
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$ROOT"/.whl/*.whl || { echo "gpu_check.sh: the wheels did not install" >&2; exit 1; }
        export PYTHONPATH="/tmp/site:$PYTHONPATH"
    fi
    "$PY" -c "import roomrender.app, diffusers, torch" || {
        echo "gpu_check.sh: roomrender's service or diffusers cannot be imported; carry the wheels" \
             "(bench/gpu_check.sh --fetch-wheels here, then carry .whl)" >&2
        exit 1
    }
fi

if [ "$DRY" = 1 ]; then
    GPU="cpu (dry run)"
    export CUDA_VISIBLE_DEVICES=""
else
    GPU="$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)"
    GPU="${GPU:-no GPU seen by nvidia-smi}"
fi
WHEN="$(date -u '+%Y-%m-%d %H:%M UTC')"
REPORT="$OUT/gpu_check.md"
LOG="$OUT/gpu_check.log"
: >"$LOG"
STATUS=0
STEPS=()

say() { echo "$*" | tee -a "$LOG"; }

# step NAME LIMIT_SECONDS COMMAND...: runs it, its output to stdout and the log; records how it ended.
step() {
    local name="$1" limit="$2"
    shift 2
    local var="GPU_CHECK_LIMIT_${name^^}"
    limit="${!var:-$limit}"
    say ""
    say "== $name: $* (limit ${limit}s)"
    local started=$SECONDS
    timeout --kill-after=20 "$limit" "$@" 2>&1 | tee -a "$LOG" "$WORK/$name.out"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - started))
    local outcome="ok"
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then outcome="timed out after ${limit}s"; STATUS=1
    elif [ "$rc" != 0 ]; then outcome="failed (exit $rc)"; STATUS=1; fi
    say "== $name: $outcome in ${took}s"
    STEPS+=("$name|$outcome|${took}|$*")
}

wants() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

say "gpu_check: $GPU, $WHEN, python $("$PY" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__)')"

if [ "$DRY" = 1 ]; then
    SD15_ARGS=(--profile tiny --compile-mode off --jobs 3 --idle-jobs 1 --repeats 1 --startup-timeout 300)
    SDXL_ARGS=(--profile tiny --size 64 --steps 2)
    FAMILY_ARGS=(--profile tiny --size 64 --steps 2)
else
    SD15_ARGS=(--repeats 3 --jobs 64 --idle-jobs 5)
    SDXL_ARGS=(--size 1024 --steps 30)
    FAMILY_ARGS=()
fi

if wants sd15; then
    step sd15 300 "$PY" bench/gpu.py --workloads "${GPU_CHECK_SD15_WORKLOADS:-bench}" --no-fast --batch 8 \
        --batch-sizes 1,8 "${SD15_ARGS[@]}" --work-dir "$WORK/sd15" --json "$WORK/sd15.json"
fi
if wants sdxl; then
    step sdxl_single 150 "$PY" bench/gpu_smoke.py --family sdxl --tasks restyle --n 1 "${SDXL_ARGS[@]}" \
        --models-dir "$WORK/sdxl-models" --json "$WORK/sdxl_single.json"
    step sdxl_batch 90 "$PY" bench/gpu_smoke.py --family sdxl --tasks restyle --n 4 "${SDXL_ARGS[@]}" \
        --models-dir "$WORK/sdxl-models" --json "$WORK/sdxl_batch.json"
fi
if wants families; then
    LISTED="$("$PY" bench/gpu_smoke.py --list-families 2>/dev/null)"
    for family in wan object_3d qwen_edit flux_schnell; do
        if ! grep -qx "$family" <<<"$LISTED"; then
            say ""
            say "== family $family: not listed by bench/gpu_smoke.py --list-families yet (not run)"
            STEPS+=("family_$family|not landed yet|0|")
            continue
        fi
        extra_var="GPU_CHECK_ARGS_${family^^}"
        read -r -a extra <<<"${!extra_var:-}"
        case "$family" in
            qwen_edit|flux_schnell) size=(--size 1024 --dtype bfloat16) ;;
            *) size=() ;;
        esac
        [ "$DRY" = 1 ] && size=()
        # On CPU Qwen-Image-Edit's VAE still reads its inputs at 1024²: the dry run takes one task.
        [ "$DRY" = 1 ] && [ "$family" = qwen_edit ] && extra+=(--tasks restyle)
        step "family_$family" 120 "$PY" bench/gpu_smoke.py --family "$family" "${size[@]}" "${FAMILY_ARGS[@]}" \
            "${extra[@]}" --models-dir "$WORK/models-$family" --json "$WORK/family_$family.json"
    done
fi

# -- the report -----------------------------------------------------------------------------------
printf '%s\n' "${STEPS[@]}" >"$WORK/steps.txt"
"$PY" - "$WORK" "$REPORT" "$OUT/gpu_check.json" "$GPU" "$WHEN" "$DRY" <<'PYEOF' | tee -a "$LOG"
import json, sys
from pathlib import Path

work, report, raw, gpu, when, dry = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), *sys.argv[4:]
steps = {}
for line in (work / "steps.txt").read_text().splitlines():
    if line:
        name, outcome, seconds, command = line.split("|", 3)
        steps[name] = {"outcome": outcome, "seconds": int(seconds), "command": command.replace(str(work), "$WORK")}


def load(name):
    path = work / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def command(name):
    step = steps.get(name)
    return f"`{step['command']}`" if step and step["command"] else "-"


rows = []  # (figure, value, goal, step)


def add(figure, value, goal, step):
    rows.append((figure, value, goal, step))


sd15 = load("sd15")
if sd15:
    by = {row["run"]: row for row in sd15["rows"]}
    eager8 = next((r for n, r in by.items() if n.startswith("plain eager b") and not n.endswith("b1")), None)
    compiled8 = next((r for n, r in by.items() if n.startswith("plain compiled")), None)
    service = next((r for n, r in by.items() if n.startswith("service bench") and "concurrent" in n), None)
    idle = next((r for n, r in by.items() if n.startswith("service bench") and "idle" in n), None)
    for name, row in by.items():
        if "images_per_s" in row:
            add(f"SD 1.5 {name}: images/s", f"{row['images_per_s']:.2f}", "", "sd15")
            add(f"SD 1.5 {name}: peak memory GiB", f"{row['memory_gib']:.2f}", "", "sd15")
    if service and compiled8:
        add("SD 1.5 service / plain compiled b8", f"{service['images_per_s'] / compiled8['images_per_s']:.2f}x",
            ">= 2x", "sd15")
    if service and eager8:
        add("SD 1.5 service / plain eager b8", f"{service['images_per_s'] / eager8['images_per_s']:.2f}x", "", "sd15")
    if service:
        add("SD 1.5 service images/s (concurrent jobs)", f"{service['images_per_s']:.2f}", ">= 10 (limit ~17)",
            "sd15")
        add("SD 1.5 service job latency p50 / p95 s (concurrent jobs)", f"{service['p50_s']:.3f} / {service['p95_s']:.3f}",
            "", "sd15")
    if idle:
        add("SD 1.5 single job latency, idle server, p50 s", f"{idle['p50_s']:.3f}", "< 0.6 s", "sd15")
    preview = next((row for row in sd15["rows"] if "overhead_percent" in row), None)
    if preview:
        add("live previews' share of a job's time", f"{preview['overhead_percent']:.2f}%", "< 3%", "sd15")
for name, label in (("sdxl_single", "1 image a job"), ("sdxl_batch", "4 images a job")):
    data = load(name)
    for result in (data or {}).get("results", []):
        images = data["n"]
        add(f"SDXL + ControlNet Union {result['task']}, {label}: warm s", f"{result['warm_s']:.3f}", "", name)
        add(f"SDXL {result['task']}, {label}: images/s", f"{images / result['warm_s']:.2f}", "", name)
        add(f"SDXL {result['task']}, {label}: peak GiB", f"{result['peak_gib']:.2f}", "", name)
for name in sorted(steps):
    if name.startswith("family_"):
        data = load(name)
        for result in (data or {}).get("results", []):
            add(f"{data['family']} {result['task']}: warm s per job ({result['result']})",
                f"{result['warm_s']:.3f}", "", name)
            add(f"{data['family']} {result['task']}: peak GiB", f"{result['peak_gib']:.2f}", "", name)

title = f"### {gpu}, {when}: `bench/gpu_check.sh{' --dry-run' if dry == '1' else ''}`"
lines = [title, "", "Steps (the command of each; $WORK is the run's scratch folder):", ""]
lines += [f"- {name}: {step['outcome']} in {step['seconds']} s: {command(name)}" for name, step in steps.items()]
lines += ["", "| figure | value | goal | from step |", "|---|---|---|---|"]
lines += [f"| {figure} | {value} | {goal} | {step} |" for figure, value, goal, step in rows]
text = "\n".join(lines) + "\n"
report.write_text(text)
raw.write_text(json.dumps({"gpu": gpu, "date": when, "dry_run": dry == "1", "steps": steps,
                           "figures": [dict(zip(("figure", "value", "goal", "step"), row)) for row in rows],
                           "raw": {name: load(name) for name in steps}}, indent=1))
print()
print(text)
PYEOF
say "gpu_check: report in $REPORT, log in $LOG"
exit "$STATUS"
