#!/usr/bin/env bash
# Variants of the default LSTM set beside run.sh's runs (same store, experiment "baselines"),
# seeds 0-1: the standard model with two stacked layers per side, and with a window of 30, on
# three datasets; standard and sparse scored by window (scoring.scope=window) on all seven.
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${1:-/tmp/baselines-store}
run() {
  # shellcheck disable=SC2068
  .venv/bin/python src/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1 $@ \
    tracking.dir="$STORE" tracking.experiment=baselines tracking.log_model=false \
    hydra.sweep.dir="$STORE/sweeps/\${now:%Y-%m-%d_%H-%M-%S}" || true
}
# shellcheck source=datasets.sh
source experiments/baselines/datasets.sh
for data in "${DATASETS[@]}"; do
  run model=standard,sparse scoring.scope=window $data
done
for data in "data=asd data.entity=omi-1,omi-3" "data=corr_breaks"; do
  run model=standard model.layers=2 $data
  run model=standard data.window=30 $data
done
