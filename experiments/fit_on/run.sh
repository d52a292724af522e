#!/usr/bin/env bash
# The fit_on study: the benchmark's grid (conf/experiment/benchmark.yaml) for the four detectors
# that score reconstruction errors, seeds 0-2, with the error model fitted on the validation
# windows' errors (scoring=val_errors, EncDec-AD's choice) beside the same runs with the default
# (scoring=train_errors, the seed's); then experiments/paired_study.py writes results.md and
# runs.csv here.
# Usage: bash experiments/fit_on/run.sh [TRAIN_STORE TRAIN_EXPERIMENT TRAIN_SWEEP]
#   default: the benchmark (`make benchmark`: ./mlruns, experiment benchmark,
#   multirun/benchmark); the selection sweep's runs serve as well (selection.enabled only adds
#   the injected copies' scores).
# STORE (default mlruns) receives the val_errors runs, experiment `fit_on`. Resumable: FINISHED
# jobs are skipped. 144 runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-mlruns}
"$PY" src/train.py -m +experiment=benchmark model=standard,sparse,sparse_projection,pca \
    seed=0,1,2 scoring=val_errors tracking.experiment=fit_on "tracking.dir=$STORE" \
    hydra.sweep.dir=multirun/fit_on
"$PY" experiments/paired_study.py --setting scoring.fit_on \
    --detectors standard,sparse,sparse_projection,pca \
    --default train "${1:-mlruns}" "${2:-benchmark}" "${3:-multirun/benchmark}" \
    --candidate val "$STORE" fit_on multirun/fit_on --seeds 0,1,2 \
    --title "\`scoring.fit_on=train\` (the default) against \`val\`" --out experiments/fit_on
