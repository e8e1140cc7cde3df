#!/usr/bin/env bash
# The README's "On a cluster" commands in their CPU form, on one machine: a tiny profile,
# torchrun with 2 gloo processes, and Slurm array tasks run as local processes with the
# variables Slurm would set (SLURM_ARRAY_TASK_ID / _COUNT). Every step checks its result.
#
#   scripts/cluster_cpu_check.sh [WORK_DIR]      (default: a new temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
WORK=$(realpath -m "${1:-$(mktemp -d)}")
mkdir -p "$WORK"
export MELUNMIX_CACHE_DIR="$WORK/cache" OMP_NUM_THREADS=1
echo "== work folder: $WORK"

echo "== a tiny MUSDB18-format dataset"
"$BIN/melunmix" make-dataset --out "$WORK/data" --train 4 --valid 1 --test 4 --duration 6 --seed 3 --no-progress
cat > "$WORK/cluster.yaml" <<EOF
name: cluster
description: the README's cluster commands at CPU size
data: {sample_rate: 44100, seq_dur: 1.0, samples_per_track: 8}
stft: {n_fft: 1024, n_hop: 512, bandwidth: 8000.0}
model: {hidden_size: 16, nb_layers: 1, n_mels: 16}
train: {models: [openunmix], seeds: [1], epochs: 2, batch_size: 8, lr_schedule: exponential, progress: false}
tune: {sample_rate: 8000, nb_trials: 3, epochs: 1, samples_per_track: 4, model: openunmix,
       storage: $WORK/shared/tune.journal, heartbeat_interval: 2, grace_period: 20}
evaluate: {jobs: 1}
EOF
COMMON=(--profile "$WORK/cluster.yaml" --data-root "$WORK/data" --results-dir "$WORK/results" --no-progress)

echo "== tuning: a Slurm array of 2 workers on one journal file (sbatch --array=0-1 tune.sbatch)"
for task in 0 1; do
    SLURM_ARRAY_TASK_ID=$task SLURM_ARRAY_TASK_COUNT=2 "$BIN/melunmix" tune "${COMMON[@]}" > "$WORK/tune.$task.log" 2>&1 &
done
wait
cat "$WORK"/tune.*.log
test "$(grep -h '^tuning openunmix trial' "$WORK"/tune.*.log | wc -l)" -eq 3

echo "== training: torchrun, 2 processes (gloo here, NCCL on GPUs), c10d rendezvous as across nodes"
"$BIN/torchrun" --nnodes 1 --nproc_per_node 2 --rdzv_backend c10d --rdzv_endpoint localhost:29511 \
    --rdzv_id "cluster-check-$$" -m melunmix.training.train "${COMMON[@]}"
grep -q '"world_size": 2' "$WORK/results/cluster/models/openunmix/settings.json"
grep -q '"tuned_params": {' "$WORK/results/cluster/models/openunmix/settings.json"

echo "== estimates of the test songs with the trained model"
"$BIN/melunmix" separate "$WORK"/data/test/*/mixture.wav --model "$WORK/results/cluster/models/openunmix/vocals.pth" \
    --out "$WORK/estimates" --no-progress

echo "== scoring: a Slurm array of 2 shards (sbatch --array=0-1 score.sbatch), then the tables"
for task in 0 1; do
    SLURM_ARRAY_TASK_ID=$task SLURM_ARRAY_TASK_COUNT=2 "$BIN/melunmix" score "$WORK/estimates" \
        --data-root "$WORK/data" --out "$WORK/eval/mysystem" --shard slurm --jobs 1 --no-progress &
done
wait
"$BIN/melunmix" score "$WORK/estimates" --data-root "$WORK/data" --out "$WORK/eval/mysystem" --aggregate --no-progress
test -f "$WORK/eval/mysystem/tables/main.csv"
echo "== all commands ran: $WORK"
