#!/usr/bin/env bash
# The sparsity path study, every run and then results.md and the plots (275 runs, seeds 0-4:
# 74 minutes measured on 2 cores shared with the test suite). Both sparse forms over model.l1
# (0.03, 0.3, 3, 30) on the premise datasets, then the standard model and the baselines on the
# same datasets, seeds 0-4, joblib with 2 workers.
# Usage: bash experiments/sparsity_path/run.sh [STORE_DIR]   (default /tmp/sparsity-path-store)
#   DATASETS=premise,premise_k200 L1=0.1,1 SEEDS=0,1 bash experiments/sparsity_path/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${1:-/tmp/sparsity-path-store}
PY=${PY:-.venv/bin/python}
DATASETS=${DATASETS:-premise,premise_k20,premise_noisy,premise_solo,premise_shift}
L1=${L1:-0.03,0.3,3,30}
# Seeds 0-2 of every cell first, then 3-4: a study cut short still has three seeds everywhere.
for seeds in ${SEEDS:-0,1,2 3,4}; do
  COMMON=(+experiment=sparsity_path "data=$DATASETS" "seed=$seeds" tracking.dir="$STORE")
  # ${EXTRA} lets a test shrink the runs (train.epochs=2 ...); empty by default.
  # shellcheck disable=SC2086
  $PY src/train.py -m "${COMMON[@]}" model=sparse,sparse_projection "model.l1=$L1" \
    hydra.sweep.dir="$STORE/sweeps/path-${seeds//,/}" ${EXTRA:-}
  # shellcheck disable=SC2086
  $PY src/train.py -m "${COMMON[@]}" model=standard,mahalanobis,pca \
    hydra.sweep.dir="$STORE/sweeps/references-${seeds//,/}" ${EXTRA:-}
done
$PY experiments/sparsity_path/study.py "$STORE" "${OUT:-experiments/sparsity_path}"
