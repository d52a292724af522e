#!/usr/bin/env bash
# Regenerates experiments/selection: the benchmark's six detectors on its twelve data sets,
# seeds 0-4, with the label-free selection on (selection.enabled=true), then the evaluation
# of the selection against the oracle and the fixed policies (study.py).
# ~70-90 min on 2 cores. Run again, it resumes: FINISHED jobs are skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
STORE=${SELECTION_STORE:-mlruns}
"$PY" src/train.py -m +experiment=benchmark selection.enabled=true \
    tracking.experiment=selection "tracking.dir=$STORE" hydra.sweep.dir=multirun/selection
"$PY" experiments/selection/study.py --tracking-dir "$STORE" --sweep multirun/selection \
    --out experiments/selection
