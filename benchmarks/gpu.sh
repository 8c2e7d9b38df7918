#!/usr/bin/env bash
# Every benchmark of benchmarks/ on one accelerator, with AMP, written to one results file (Markdown).
#
#   bash benchmarks/gpu.sh [--device cuda] [--out benchmarks/results-gpu.md] [--quick] [--dry-run]
#
# --device cpu --quick runs the same path on a CPU with small inputs (what the tests do); --dry-run prints the
# commands and checks that every script accepts its arguments, running nothing heavy. Sized for < 10 minutes on one
# data-centre GPU (the step limits add up to 540 s): the network table with AMP, the training-capacity search
# (largest patch and batch in 8/16/24 GiB, AMP as the bundles train on a GPU), one epoch of each bundle at its full
# size, the decoder seam. The python is $PYTHON (default: python); each step has its own time limit, and a step that
# fails is recorded and the next runs. (whole_ct.py and the float32 network table run on their own.)
set -uo pipefail

DEVICE=cuda
OUT=benchmarks/results-gpu.md
QUICK=()
DRY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --quick) QUICK=(--quick); shift ;;
        --dry-run) DRY=1; shift ;;
        *) echo "error: unknown argument $1 (use --device, --out, --quick, --dry-run)" >&2; exit 2 ;;
    esac
done
PY="${PYTHON:-python}"
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
THREADS="$("$PY" -c 'import os; print(len(os.sched_getaffinity(0)))')"
REPEATS=5
[ ${#QUICK[@]} -gt 0 ] && REPEATS=1
ONLY=()  # the CPU quick path (a dry run of the GPU one) runs the AMP networks in 2D only: CPU bf16 is slow
[ "$DEVICE" = cpu ] && [ ${#QUICK[@]} -gt 0 ] && ONLY=(--only 2d)
SCALE=1  # the time limits are a GPU's; a CPU gets ten times as long
[ "$DEVICE" = cpu ] && SCALE=10

CAPACITY="--device $DEVICE --amp"  # a CPU counts on the meta device (float32; AMP is a GPU setting of the bundles);
# AT is left out: it needs what SAT needs (both hand the decoder one channel)
[ "$DEVICE" = cpu ] && CAPACITY="--device meta"

STEPS=(
    "150|benchmarks/networks.py --device $DEVICE --amp --threads $THREADS --repeats $REPEATS ${QUICK[*]} ${ONLY[*]}"
    "150|benchmarks/capacity.py $CAPACITY --gates org sat --threads $THREADS ${QUICK[*]}"
    "180|benchmarks/bundle_epoch.py --device $DEVICE ${QUICK[*]}"
    "60|benchmarks/join.py --device $DEVICE --threads $THREADS --repeats $REPEATS ${QUICK[*]}"
)

if [ "$DRY" = 1 ]; then
    for step in "${STEPS[@]}"; do
        cmd="${step#*|}"
        echo "timeout ${step%%|*} $PY $cmd"
        script="${cmd%% *}"
        "$PY" "$script" --help > /dev/null || { echo "error: $script does not run" >&2; exit 1; }
    done
    exit 0
fi

mkdir -p "$(dirname "$OUT")"
TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT
{
    echo "# satgate-monai benchmarks on $DEVICE"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), host $(hostname), $THREADS CPU threads, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$PY" -c "import torch; d='$DEVICE'; print('torch', torch.__version__, '|', torch.cuda.get_device_name(d) if d.startswith('cuda') else 'CPU')"
    echo
} > "$TMP"
status=0
for step in "${STEPS[@]}"; do
    limit=$(( ${step%%|*} * SCALE ))
    cmd="${step#*|}"
    echo "## \`python $cmd\`" >> "$TMP"
    echo >> "$TMP"
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout "$limit" "$PY" $cmd >> "$TMP" 2> "$TMP.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        status=1
        { echo; echo "**step failed (exit $rc)**:"; echo '```'; tail -20 "$TMP.err"; echo '```'; } >> "$TMP"
    fi
    rm -f "$TMP.err"
    echo >> "$TMP"
    echo "(step took $(( $(date +%s) - start )) s)" >> "$TMP"
    echo >> "$TMP"
done
mv "$TMP" "$OUT"
trap - EXIT
echo "results: $OUT"
exit $status
