#!/usr/bin/env bash
# The six detectors with their defaults on seven datasets, seeds 0-4 (seeds 0-2 first for
# every dataset, then 3-4), joblib with 2 workers; then the table in results.md.
# Usage: bash experiments/baselines/run.sh [STORE_DIR]   (default /tmp/baselines-store)
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${1:-/tmp/baselines-store}
PY=.venv/bin/python
MODELS=standard,sparse,sparse_projection,mahalanobis,pca,iforest
# shellcheck source=datasets.sh
source experiments/baselines/datasets.sh
for seeds in 0,1,2 3,4; do
  for data in "${DATASETS[@]}"; do
    # shellcheck disable=SC2086
    $PY src/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=$seeds model=$MODELS \
      $data tracking.dir="$STORE" tracking.experiment=baselines tracking.log_model=false \
      hydra.sweep.dir="$STORE/sweeps/\${now:%Y-%m-%d_%H-%M-%S}" || true
  done
done
# The per-row Mahalanobis (the distance of each standardised row), deterministic: one seed.
for data in "${DATASETS[@]}"; do
  # shellcheck disable=SC2086
  $PY src/train.py -m seed=0 model=mahalanobis model.mahalanobis_scope=row $data \
    tracking.dir="$STORE" tracking.experiment=baselines tracking.log_model=false \
    hydra.sweep.dir="$STORE/sweeps/\${now:%Y-%m-%d_%H-%M-%S}" || true
done
bash experiments/baselines/capacity.sh "$STORE"
bash experiments/baselines/window_scope.sh "$STORE"
$PY experiments/baselines/table.py "$STORE" > experiments/baselines/results.md
