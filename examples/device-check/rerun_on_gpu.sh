#!/usr/bin/env bash
# Device check for a notebook re-run as written on a GPU: a realistic course notebook (torchvision
# loaders from a utils.py, tqdm, torchsummary, a `cuda` flag), full MNIST, 2 epochs, 2 seeds, through
# `tinycnn check --rerun` exactly as a teacher runs it. Writes rerun-gpu.json (each seed's seconds an
# epoch, its log) into $OUT, or the current folder. About 5 minutes on a fresh machine: most of it
# builds the course environment (5.5 GB) once.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-.}
make setup course-env >/dev/null
work=$(mktemp -d)
.venv/bin/python - "$work" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "tests")
from course_notebooks import write_course_notebook
from grading_fixtures import write_submission
write_course_notebook(write_submission(Path(sys.argv[1]) / "submission"), epochs=2, subset=None)
PY
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/gpu.txt" || echo "no GPU" > "$out/gpu.txt"
.venv/bin/tinycnn check "$work/submission" --rerun 2 --json > "$out/rerun-gpu.json" || true
.venv/bin/python -c "
import json, sys
rule = next(r for r in json.load(open('$out/rerun-gpu.json'))['rules'] if r['name'] == 'rerun')
print(open('$out/gpu.txt').read().strip())
for r in rule['details']:
    print(f\"seed {r['seed']}: {r['epoch_seconds']:.1f} s an epoch, test {r['test']}, {r['error'] or 'ok'}\")
"
