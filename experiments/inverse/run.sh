#!/usr/bin/env bash
# The inverse study: the benchmark's grid (conf/experiment/benchmark.yaml) for the five detectors
# whose scores are a Mahalanobis distance, seeds 0-2, with scoring.inverse=shrinkage, beside the
# same runs with the default (pinv); then experiments/paired_study.py writes results.md and
# runs.csv here.
# Usage: bash experiments/inverse/run.sh [PINV_STORE PINV_EXPERIMENT PINV_SWEEP]
#   default: the benchmark (`make benchmark`: ./mlruns, experiment benchmark,
#   multirun/benchmark); the selection sweep's runs serve as well (selection.enabled only adds
#   the injected copies' scores): /work/study-store selection multirun/selection.
# STORE (default mlruns) receives the shrinkage runs, experiment `inverse`. Resumable: FINISHED
# jobs are skipped. 180 runs; then the same for scoring.inverse=oas (experiment inverse_oas,
# results in experiments/inverse/oas), 180 more.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-mlruns}
"$PY" src/train.py -m +experiment=benchmark model=standard,sparse,sparse_projection,mahalanobis,pca \
    seed=0,1,2 scoring.inverse=shrinkage tracking.experiment=inverse "tracking.dir=$STORE" \
    hydra.sweep.dir=multirun/inverse
"$PY" experiments/paired_study.py --setting scoring.inverse \
    --detectors standard,sparse,sparse_projection,mahalanobis,pca \
    --default pinv "${1:-mlruns}" "${2:-benchmark}" "${3:-multirun/benchmark}" \
    --candidate shrinkage "$STORE" inverse multirun/inverse --seeds 0,1,2 \
    --title "\`scoring.inverse=pinv\` (the default) against \`shrinkage\` (0.1)" --out experiments/inverse
"$PY" src/train.py -m +experiment=benchmark model=standard,sparse,sparse_projection,mahalanobis,pca \
    seed=0,1,2 scoring.inverse=oas tracking.experiment=inverse_oas "tracking.dir=$STORE" \
    hydra.sweep.dir=multirun/inverse_oas
"$PY" experiments/paired_study.py --setting scoring.inverse \
    --detectors standard,sparse,sparse_projection,mahalanobis,pca \
    --default pinv "${1:-mlruns}" "${2:-benchmark}" "${3:-multirun/benchmark}" \
    --candidate oas "$STORE" inverse_oas multirun/inverse_oas --seeds 0,1,2 \
    --title "\`scoring.inverse=pinv\` (the default) against \`oas\`" --out experiments/inverse/oas
