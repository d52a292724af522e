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
# One candidate inverse: its sweep, then its study. $1 the inverse, $2 its experiment (and
# sweep folder), $3 the results' folder, $4 results.md's heading.
candidate() {
    "$PY" src/train.py -m +experiment=benchmark \
        model=standard,sparse,sparse_projection,mahalanobis,pca seed=0,1,2 \
        "scoring.inverse=$1" "tracking.experiment=$2" "tracking.dir=$STORE" \
        "hydra.sweep.dir=multirun/$2"
    "$PY" experiments/paired_study.py --setting scoring.inverse \
        --detectors standard,sparse,sparse_projection,mahalanobis,pca \
        --default pinv "$PINV_STORE" "$PINV_EXPERIMENT" "$PINV_SWEEP" \
        --candidate "$1" "$STORE" "$2" "multirun/$2" --seeds 0,1,2 --title "$4" --out "$3"
}
PINV_STORE=${1:-mlruns} PINV_EXPERIMENT=${2:-benchmark} PINV_SWEEP=${3:-multirun/benchmark}
candidate shrinkage inverse experiments/inverse \
    "\`scoring.inverse=pinv\` (the default) against \`shrinkage\` (0.1)"
candidate oas inverse_oas experiments/inverse/oas \
    "\`scoring.inverse=pinv\` (the default) against \`oas\`"
