#!/usr/bin/env bash
# Two stacked LSTM layers per side, and a window of 30, each against the default (one layer,
# window 15) for the standard model, seeds 0-1, on three datasets. The default runs are those
# of run.sh (same store); this adds the variants to the experiment "baselines".
set -euo pipefail
cd "$(dirname "$0")/../.."
STORE=${1:-/tmp/baselines-store}
for data in "data=asd data.entity=omi-1,omi-3" "data=corr_breaks"; do
  # shellcheck disable=SC2086
  .venv/bin/python src/train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 seed=0,1 \
    model=standard model.layers=1,2 data.window=15,30 $data tracking.dir="$STORE" \
    tracking.experiment=baselines tracking.log_model=false \
    hydra.sweep.dir="$STORE/sweeps/\${now:%Y-%m-%d_%H-%M-%S}" || true
done
