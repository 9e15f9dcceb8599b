#!/usr/bin/env bash
# Rehearse `make gpu-check` on this CPU (`make gpu-rehearsal`): the GPU image's versions, its wheel folder, every stage.
#
#   tools/gpu_rehearsal.sh [DIR]    DIR (default build/gpu-rehearsal) holds venv/ (made here, reused while the
#                                   versions below stay), wheels/ (make gpu-wheels GPU_WHEELS=DIR/wheels fills it),
#                                   out/ (the records) and torch-home/ (TORCH_HOME: this machine's cache is not touched)
#   REHEARSAL_PYTHON=python3.12     the environment's interpreter (default: python3.12 on the PATH, else pyenv's 3.12): the GPU image's Python is 3.12
#
# Two calls, as on a 15-minute lease: every stage with the chapters under tiny (about 5 minutes here), then the second
# call's `--chapters-profile quick --stages install,chapters` with a budget of 300 s, which on a CPU fits the first
# quick chapter alone (about 3 minutes): the second call merges into the first call's record, and each chapter that
# does not fit is recorded as skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-build/gpu-rehearsal}
PY=${REHEARSAL_PYTHON:-}
if [[ -z $PY ]]; then    # python3.12 on the PATH, else pyenv's (its shim fails when 3.12 is not the selected version)
  for p in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
    if "$p" -V > /dev/null 2>&1; then PY=$p; break; fi
  done
  PY=${PY:-python3.12}
fi
# the GPU image ('cuda', pip list read 2026-11): Python 3.12.3 and these versions. Its torch is 2.11.0+cu130; PyPI's
# torch 2.11.0 is the same release built for CUDA 13.0 (PyPI has no CPU build for Linux), and runs on a CPU
PINNED=(torch==2.11.0 torchvision==0.26.0 torchmetrics==1.9.0 transformers==5.17.0 tokenizers==0.23.2 numpy==2.5.2
        huggingface-hub==1.33.0 accelerate==1.15.0 safetensors==0.8.0)
# also on the image, versions not read: what mempkg, pytest and the wheels' Requires-Dist take from it (the wheel
# folder carries the rest); a name here that the image lacks would hide a gap in the folder
IMAGE=(scipy pandas matplotlib scikit-learn scikit-image seaborn pyarrow tqdm pillow pytest requests aiohttp attrs
       click filelock packaging psutil pygments python-dateutil pyyaml regex typing-extensions zipp)

venv=$DIR/venv wheels=$DIR/wheels out=$DIR/out
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' \
  || echo "warning: $PY is Python $("$PY" -c 'import platform; print(platform.python_version())'), not 3.12 as on the GPU image" >&2
want="$("$PY" -V) ${PINNED[*]} ${IMAGE[*]}"
if [[ ! -f $venv/.installed || "$(cat "$venv/.installed")" != "$want" ]]; then
  [[ -x $venv/bin/python && "$("$venv/bin/python" -V)" == "$("$PY" -V)" ]] || { rm -rf "$venv"; "$PY" -m venv "$venv"; }
  "$venv/bin/python" -m pip install -q "${PINNED[@]}" "${IMAGE[@]}"
  echo "$want" > "$venv/.installed"
fi
compgen -G "$wheels/*.whl" > /dev/null || { echo "no wheel in $wheels: run make gpu-wheels GPU_WHEELS=$wheels" >&2; exit 1; }

"$venv/bin/python" - "${PINNED[@]%%==*}" <<'EOF'
import platform, sys
from importlib.metadata import version
print(f"rehearsal environment: Python {platform.python_version()}, "
      + ", ".join(f"{name} {version(name)}" for name in sys.argv[1:]))
EOF
echo "  and $(ls "$wheels"/*.whl | wc -l) wheels from $wheels"
rm -rf "$out"
run() {
  env -u PYTHONPATH TORCH_HOME="$PWD/$DIR/torch-home" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" PYTHONUNBUFFERED=1 \
    "$venv/bin/python" tools/gpu_check.py --wheels "$wheels" --device cpu --scale tiny --out "$out" "$@"
}
status=0
echo "== call 1: every stage, the chapters under tiny"
run --budget 100000 || status=$?
echo "== call 2: --chapters-profile quick --stages install,chapters, 300 s"
run --chapters-profile quick --stages install,chapters --budget 300 || status=$?
"$venv/bin/python" - "$out" <<'EOF'
import json, sys
from pathlib import Path
(path,) = Path(sys.argv[1]).glob("gpu-*.json")
r = json.loads(path.read_text())
print(f"record {path}: {len(r['calls'])} calls")
for stage in ("install", "tests", "chapters", "scale"):
    e = r["stages"].get(stage, {"status": "-", "seconds": 0, "call": "-"})
    print(f"  {stage:24s} {e['status']:7s} {e['seconds'] or 0:6.1f} s  call {e['call']}  "
          f"{e.get('reason') or e.get('error') or ''}")
for profile, rows in r.get("chapters", {}).items():
    for name, row in rows.items():
        why = row.get("reason") or "".join((row.get("error") or "").strip().splitlines()[-1:])
        if "verdicts_same" in row:
            why = f"verdicts {'same as' if row['verdicts_same'] else 'unlike'} the reference's, headlines within: " \
                  + str(all(h["within"] for h in row["headline"].values()))
        print(f"  {profile:5s} {name:18s} {row['status']:7s} {row['seconds']:6.1f} s  call {row['call']}  {why}")
EOF
exit $status
