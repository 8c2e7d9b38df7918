#!/usr/bin/env bash
# SAT against ORG under nnU-Net v2's own recipe on a data_prep dataset (the semi-real lung lesions), end to end:
# export, nnU-Net's planning and preprocessing, the SAT plans variant, the planned network's cost (parameters, FLOPs,
# one training step's peak memory), nnUNetv2_train with each plans, nnUNetv2_predict on the test cases, and the
# project's Dice/FPR/FNR against their labels. Prints every figure; the commands are the evidence of docs/nnunet.md.
#
#   bash benchmarks/nnunet_lesions.sh PREPARED WORK [CONFIG] [TRAINER]
#
# PREPARED: a data_prep dataset (read only); WORK: a scratch folder outside the checkout (raw/, pre/, res/, pred/);
# CONFIG: the trained configuration (default 2d); TRAINER: default nnUNetTrainer_SATCPU8. One process and one thread
# at a time (OMP_NUM_THREADS=1, nnUNet_n_proc_DA=0: the trainer's seeds then fix the batches). nnU-Net's python is
# $NNUNET_PYTHON (default: what .ci/nnunet_env.sh prints); the scoring runs in the project's $PYTHON (default python);
# training and prediction run on $DEVICE (default cpu; cuda on a GPU).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: bash benchmarks/nnunet_lesions.sh PREPARED WORK [CONFIG] [TRAINER]" >&2; exit 2; }
PREPARED="$1"; WORK="$(mkdir -p "$2" && cd "$2" && pwd)"; CONFIG="${3:-2d}"; TRAINER="${4:-nnUNetTrainer_SATCPU8}"
cd "$(dirname "$0")/.."
NNPY="${NNUNET_PYTHON:-$(bash .ci/nnunet_env.sh | tail -1)}"
NNBIN="$(dirname "$NNPY")"
export PYTHONPATH="$PWD" nnUNet_raw="$WORK/raw" nnUNet_preprocessed="$WORK/pre" nnUNet_results="$WORK/res"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nnUNet_def_n_proc=1 nnUNet_compile=false
export nnUNet_extTrainer="$PWD/satgate_monai/nnunet/trainers"
PLANS="$WORK/pre/Dataset501_Lesions"
DEVICE="${DEVICE:-cpu}"
echo "# $(date -u) load: $(uptime)"
[ -d "$WORK/raw/Dataset501_Lesions" ] || "${PYTHON:-python}" -m data_prep export-nnunet --src "$PREPARED" \
    --out "$WORK/raw" --id 501 --name Lesions
# the planner hands nnUNet_n_proc_DA to torch.set_num_threads: 1 here, 0 (no augmentation workers) for training
[ -f "$PLANS/nnUNetPlans.json" ] || nnUNet_n_proc_DA=1 "$NNBIN/nnUNetv2_plan_and_preprocess" -d 501 -c 2d 3d_fullres \
    -np 1 1 -npfp 1
"$NNPY" -m satgate_monai.nnunet plans 501 --gate sat
echo "## cost of the planned 3d_fullres and $CONFIG networks (load: $(uptime))"
"$NNPY" benchmarks/nnunet_cost.py "$PLANS/nnUNetPlans.json" --config 3d_fullres
[ "$CONFIG" = 3d_fullres ] || "$NNPY" benchmarks/nnunet_cost.py "$PLANS/nnUNetPlans.json" --config "$CONFIG"
export nnUNet_n_proc_DA=0
for P in nnUNetPlans_SAT nnUNetPlans; do
    echo "## $P: nnUNetv2_train 501 $CONFIG 0 -tr $TRAINER (load: $(uptime))"
    start=$(date +%s)
    "$NNBIN/nnUNetv2_train" 501 "$CONFIG" 0 -p "$P" -tr "$TRAINER" -device "$DEVICE" > "$WORK/train_$P.log" 2>&1
    echo "trained in $(( $(date +%s) - start )) s (load: $(uptime))"
    "$NNBIN/nnUNetv2_predict" -i "$WORK/raw/Dataset501_Lesions/imagesTs" -o "$WORK/pred/$P" -d 501 -c "$CONFIG" \
        -f 0 -p "$P" -tr "$TRAINER" -chk checkpoint_final.pth -device "$DEVICE" --disable_tta -npp 1 -nps 1 \
        > "$WORK/predict_$P.log" 2>&1
done
echo "## test cases, Dice / FPR / FNR (load: $(uptime))"
"${PYTHON:-python}" benchmarks/nnunet_eval.py --labels "$WORK/raw/Dataset501_Lesions/labelsTs" \
    "SAT=$WORK/pred/nnUNetPlans_SAT" "ORG=$WORK/pred/nnUNetPlans"
