#!/usr/bin/env bash
# The LSTMs with scoring.scope=window (the default `auto` picks it on all seven datasets),
# seeds 0-2 beside capacity.sh's seeds 0-1 of standard and sparse (same store).
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${1:-/tmp/baselines-store}
# shellcheck source=datasets.sh
source experiments/baselines/datasets.sh
for data in "${DATASETS[@]}"; do
  # shellcheck disable=SC2086
  .venv/bin/python src/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1,2 \
    model=standard,sparse,sparse_projection scoring.scope=window $data tracking.dir="$STORE" \
    tracking.experiment=baselines tracking.log_model=false \
    hydra.sweep.dir="$STORE/sweeps/\${now:%Y-%m-%d_%H-%M-%S}" || true
done
