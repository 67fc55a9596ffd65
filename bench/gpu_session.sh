#!/usr/bin/env bash
# One call on a lent GPU machine, prepared so that a session's few minutes of device time go to
# measuring and training rather than to setting up:
#   1. the CUDA-only tests (pytest -m needs_cuda),
#   2. model timings per backend at 720p and 1080p (bench/bench_models.py),
#   3. the deployment tuner at 1920x1080 / 30 fps, validated on LOL eval15 (python -m calibrate),
#   4. blnet trained for TRAIN_MINUTES with recipe blnet_gpu: a short probe measures the time per
#      step and the recipe's steps are scaled to fit, so its cosine schedule runs to the end;
#      the best checkpoint on validation is then scored on LOL eval15.
# Everything prints to $OUT/session.log; results (JSON, profile, checkpoint, curve) are packed
# into $OUT/results.tar.gz at the end. Without $OUT (a dry run anywhere) they go to ./gpu_out.
#
# Before the call: `python bench/device_pack.py` splits LOL into carry-sized parts; carry all but
# the last in calls of their own (e.g. `true`), then run this with the last part (and .whl, with
# a PyAV wheel, for the tests that decode video):
#   bash bench/gpu_session.sh [TRAIN_MINUTES, default 4; 0 skips training]
# Set SKIP=tests,bench,calibrate to leave steps out; DEVICE=cpu PROBE_SCALE=0.0001 make a dry run
# of the training part on a machine without a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
TRAIN_MIN="${1:-4}"
SKIP=",${SKIP:-},"
DEVICE="${DEVICE:-cuda}"
PROBE_SCALE="${PROBE_SCALE:-0.002}"
export PYTHONUNBUFFERED=1
WORK="$(mktemp -d)"
exec > >(tee -a "$OUT/session.log") 2>&1
log() { echo "== $(date -u +%H:%M:%S) $*"; }
failed=()

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" || failed+=("wheels")
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if compgen -G ".data/part*" > /dev/null; then
    mkdir -p .data/shared
    for p in .data/part*/; do cp -rln "$p." .data/shared/; done
    export LOWLIGHT_SHARED="$PWD/.data/shared"
fi
LOL="${LOWLIGHT_SHARED:-$PWD/../shared}/data/lol"
log "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import sys, torch; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.is_available() and torch.cuda.get_device_name(0))"
echo "LOL eval15 pairs: $(ls "$LOL/eval15/low" 2> /dev/null | wc -l), training pairs: $(ls "$LOL/our485/low" 2> /dev/null | wc -l)"

if [[ $SKIP != *,tests,* ]]; then
    log "CUDA tests"
    if python3 -c "import av" 2> /dev/null; then
        python3 -m pytest -q -m needs_cuda -p no:cacheprovider || failed+=("tests")
    else
        # Without PyAV the video modules' tests cannot even be collected: run the rest.
        echo "PyAV is missing (carry a wheel in .whl): the tests of modules that import it are left out"
        python3 -m pytest -q -m needs_cuda -p no:cacheprovider --continue-on-collection-errors || failed+=("tests (no PyAV)")
    fi
fi
if [[ $SKIP != *,bench,* ]]; then
    log "model timings"
    python3 bench/bench_models.py --resolutions 1280x720 1920x1080 --max-seconds 3 --json "$WORK/models.json" || failed+=("bench")
fi
if [[ $SKIP != *,calibrate,* ]]; then
    log "calibrate 1920x1080 @ 30 fps"
    lol_args=()
    [ -d "$LOL/eval15/low" ] && lol_args=(--lol-dir "$LOL/eval15/low")
    python3 -m calibrate --resolution 1920x1080 --fps 30 --max-seconds 3 -q "${lol_args[@]}" -o "$WORK/profile.json" || failed+=("calibrate")
fi
if [ "$TRAIN_MIN" != 0 ]; then
    if [ ! -d "$LOL/our485/low" ]; then
        echo "no LOL training pairs at $LOL/our485: training skipped (carry the parts of bench/device_pack.py)"
        failed+=("train: no data")
    else
        log "blnet: probe the time per step"
        python3 -m training.train --recipe blnet_gpu --device "$DEVICE" --data "$LOL/our485" --run-dir "$WORK/probe" \
            --steps-scale "$PROBE_SCALE" > "$WORK/probe.json" || failed+=("probe")
        scale=$(python3 - "$WORK/probe.json" "$TRAIN_MIN" <<'EOF'
import json, sys
from training.train import load_recipe
r = json.load(open(sys.argv[1]))
per_step = r["seconds"] / r["steps"]  # includes one validation: errs on the short side
total = load_recipe("blnet_gpu").total_steps
print(f"{min(1.0, 60.0 * float(sys.argv[2]) / (per_step * total)):.4f}")
print(f"probe: {r['steps']} steps in {r['seconds']:.1f} s ({per_step:.3f} s per step, validation included)", file=sys.stderr)
EOF
        ) || { failed+=("probe"); scale=""; }
        if [ -n "$scale" ]; then
            log "blnet: train $TRAIN_MIN min (steps x $scale)"
            python3 -m training.train --recipe blnet_gpu --device "$DEVICE" --data "$LOL/our485" --run-dir "$WORK/blnet_gpu" \
                --steps-scale "$scale" --max-minutes "$(python3 -c "print($TRAIN_MIN * 1.2)")" || failed+=("train")
            if [ -f "$WORK/blnet_gpu/best.pt" ]; then
                log "blnet: best checkpoint on LOL eval15"
                python3 -m training.evaluate --weights "$WORK/blnet_gpu/best.pt" --data "$LOL/eval15" --device "$DEVICE" \
                    --no-progress --json "$WORK/eval15.json" || failed+=("evaluate")
            fi
        fi
    fi
fi

log "packing results"
tar -czf "$OUT/results.tar.gz" -C "$WORK" --exclude='last.pt' --exclude='probe' . || failed+=("pack")
if [ ${#failed[@]} -gt 0 ]; then
    log "done; failed: ${failed[*]}"
    exit 1
fi
log "done"
