#!/usr/bin/env bash
# The threshold study: label-free alarm thresholds on the benchmark's runs and on a shifted
# series, then results.md, runs.csv and rules.png in this folder.
#   1. A copy of ASD omi-2 whose whole test file sits +3 training standard deviations away on
#      every channel not constant in training (an industrial rig whose test files all drift).
#   2. mahalanobis, pca, iforest, standard, sparse on it, seeds 0 and 1 (10 runs, into STORE,
#      experiment `thresholds`; 3.3 minutes measured on 2 cores busy with the benchmark).
#   3. study.py over the FINISHED runs of seeds $SEEDS (default 0-4) of the benchmark
#      (BENCH_STORE, only read) and of STORE.
# Usage: bash experiments/thresholds/run.sh [BENCH_STORE] [STORE]
#   defaults: BENCH_STORE=mlruns, where make benchmark writes (experiment $BENCH_EXPERIMENT, default benchmark),
#   STORE=/tmp/thresholds-store. DATA (default /tmp/thresholds-shifted-omi2) holds the copy.
# Running it again resumes: the copy is written byte for byte the same, so finished jobs are
# skipped (their config_hash includes the files) and only the study is redone.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH_STORE=${1:-mlruns}
BENCH_EXPERIMENT=${BENCH_EXPERIMENT:-benchmark}
STORE=${2:-/tmp/thresholds-store}
SOURCE=${SOURCE:-../shared/data/asd/omi-2}
DATA=${DATA:-/tmp/thresholds-shifted-omi2}
SHIFT_SD=${SHIFT_SD:-3}
PY=${PY:-.venv/bin/python}
mkdir -p "$DATA"

$PY - "$SOURCE" "$DATA" "$SHIFT_SD" <<'PYTHON'
import shutil
import sys
from pathlib import Path

import pandas as pd

from sparse_lstm_ad.data.scaling import constant_channels

source, data, shift_sd = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
train = pd.read_csv(source / "train.csv.gz")
test = pd.read_csv(source / "test.csv.gz")
channels = [c for c in train.columns if c != "t"]
values = train[channels].to_numpy(dtype=float)
moving = [c for c, constant in zip(channels, constant_channels(values)) if not constant]
test[moving] += shift_sd * train[moving].std(ddof=0)  # ddof=0: the standardiser's std
shutil.copyfile(source / "train.csv.gz", data / "omi2_shifted.csv.gz")
# mtime 0: the same bytes on every run, so a second run.sh skips the finished jobs.
gzip = {"method": "gzip", "mtime": 0}
test.to_csv(data / "omi2_shifted_test.csv.gz", index=False, compression=gzip)
print(f"{data}: test shifted by {shift_sd:g} train std on {len(moving)}/{len(channels)} channels")
PYTHON

$PY src/train.py -m model=mahalanobis,pca,iforest,standard,sparse seed=0,1 \
  data=csv data.csv.dir="$DATA" data.csv.train=omi2_shifted.csv.gz \
  data.csv.test=omi2_shifted_test.csv.gz data.csv.time_column=t data.csv.label_column=label \
  data.csv.constant=drop tracking.dir="$STORE" tracking.experiment=thresholds \
  tracking.log_model=false hydra.sweep.dir="$STORE/sweep" ${EXTRA:-}

$PY experiments/thresholds/study.py --store "$BENCH_STORE" --experiment "$BENCH_EXPERIMENT" \
  --store "$STORE" --experiment thresholds --shifted omi2_shifted --seeds "${SEEDS:-0,1,2,3,4}" \
  --out "${OUT:-experiments/thresholds}"
