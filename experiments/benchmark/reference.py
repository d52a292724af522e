"""A naive re-implementation of the seed notebook's pipeline, for the benchmark only.

Written the way the notebook works (pandas row-loop windows, Keras `fit` with its defaults at
batch 128, a Python loop of `scipy.spatial.distance.mahalanobis` over every (window, step)
point), with one defect fixed so that detection quality is comparable: the score uses the
(pseudo-)inverse covariance, not the covariance. Nothing in the package imports it.

As a script it does the notebook's whole job on seed case 2: standardise, window, train the
standard model with early stopping, score the test windows, plot loss and scores, and print
the AUC-ROC against the regime shift.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

WINDOW = 15
HIDDEN = 5
TRAIN_ROWS = 10_000


@dataclass
class ReferenceResult:
    auc_roc: float  # per window, labelled by its first row, as the notebook plots it
    auc_roc_rows: float  # per row, each the mean over its windows: the unit our pipeline scores
    val_loss: float
    epochs_run: int
    epoch_seconds: list[float] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # phase -> wall time


def seed_case2() -> pd.DataFrame:
    """The notebook's 15,000 rows of [F1, F2 x 4], from the package's bit-exact generators."""
    from sparse_lstm_ad.data import seed_series

    values, channels = seed_series(4)
    return pd.DataFrame(values, columns=channels)


def make_windows_loop(frame: pd.DataFrame, window: int = WINDOW) -> np.ndarray:
    """The notebook's windowing: one `iloc` slice per row (stopping one window early)."""
    windows = []
    for i in range(len(frame) - window):
        windows.append(frame.iloc[i : i + window].values)
    return np.array(windows)


def build_seed_model(n_channels: int) -> object:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(WINDOW, n_channels)),
            keras.layers.LSTM(HIDDEN),
            keras.layers.RepeatVector(WINDOW),
            keras.layers.LSTM(HIDDEN, return_sequences=True),
            keras.layers.TimeDistributed(keras.layers.Dense(n_channels)),
        ]
    )
    model.compile(optimizer="adam", loss="mse")
    return model


class _EpochTimer:
    """Keras callback recording each epoch's wall time (imported lazily with Keras)."""

    @staticmethod
    def make(times: list[float]) -> object:
        import keras

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                times.append(time.perf_counter() - self.started)

        return Timer()


def fit_seed_model(model: object, windows: np.ndarray, epochs: int, patience: int) -> tuple:
    """Keras fit with defaults, batch 128, last 10 % of windows for validation, no shuffle."""
    import keras

    times: list[float] = []
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True
    )
    history = model.fit(
        windows,
        windows,
        epochs=epochs,
        batch_size=128,
        validation_split=0.1,
        shuffle=False,
        callbacks=[stopper, _EpochTimer.make(times)],
        verbose=0,
    )
    return history.history, times


def mahalanobis_loop(errors: np.ndarray, mean: np.ndarray, inv_cov: np.ndarray) -> np.ndarray:
    """(n, length, k) errors -> (n, length) distances, one SciPy call per point."""
    from scipy.spatial.distance import mahalanobis

    n, length, _ = errors.shape
    scores = np.zeros((n, length))
    for i in range(n):
        for j in range(length):
            scores[i, j] = mahalanobis(errors[i, j], mean, inv_cov)
    return scores


def fit_error_gaussian(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = errors.reshape(-1, errors.shape[-1])
    return flat.mean(axis=0), np.linalg.pinv(np.cov(flat, rowvar=False))


def run_reference(
    frame: pd.DataFrame, epochs: int, patience: int, seed: int = 0
) -> ReferenceResult:
    """The whole pipeline, phase by phase: windows -> fit -> errors -> scores -> AUC-ROC."""
    import keras

    from sparse_lstm_ad.data import SEED_ANOMALY_FROM
    from sparse_lstm_ad.error_scores import time_step_scores
    from sparse_lstm_ad.metrics import auc_roc

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    train, test = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    mean, std = train.mean(), train.std()
    train, test = (train - mean) / std, (test - mean) / std
    x_train, x_test = make_windows_loop(train), make_windows_loop(test)
    seconds["windowing"] = time.perf_counter() - started

    keras.utils.set_random_seed(seed)
    model = build_seed_model(frame.shape[1])
    mark = time.perf_counter()
    history, epoch_times = fit_seed_model(model, x_train, epochs, patience)
    seconds["fit"] = time.perf_counter() - mark

    mark = time.perf_counter()
    train_errors = model.predict(x_train, verbose=0) - x_train
    test_errors = model.predict(x_test, verbose=0) - x_test
    seconds["predict"] = time.perf_counter() - mark

    mark = time.perf_counter()
    mu, inv_cov = fit_error_gaussian(train_errors)
    step_scores = mahalanobis_loop(test_errors, mu, inv_cov)
    window_scores = step_scores.mean(axis=1)
    seconds["scoring"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started

    # The notebook plots window i's score at row i: label it by that row.
    labels = (np.arange(len(window_scores)) >= SEED_ANOMALY_FROM).astype(int)
    # Outside the timed part: the same scores on our pipeline's unit, so quality compares.
    row_scores = time_step_scores(step_scores, np.arange(len(step_scores)), len(test))
    row_labels = (np.arange(len(test)) >= SEED_ANOMALY_FROM).astype(int)
    covered = ~np.isnan(row_scores)  # the notebook's windows stop one row early
    return ReferenceResult(
        auc_roc=auc_roc(window_scores, labels),
        auc_roc_rows=auc_roc(row_scores[covered], row_labels[covered]),
        val_loss=float(min(history["val_loss"])),
        epochs_run=len(history["val_loss"]),
        epoch_seconds=epoch_times,
        seconds=seconds,
    )


def _plot(result: ReferenceResult, folder: Path) -> None:
    """The notebook's figures; only their cost matters here, so they show the timings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots()
    axis.plot(result.epoch_seconds)
    axis.set_xlabel("epoch")
    axis.set_ylabel("seconds")
    figure.savefig(folder / "reference_epochs.png")
    plt.close(figure)


def main() -> None:
    """The notebook's job as one script: seed config (30 epochs, patience 5), case 2."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run_reference(seed_case2(), epochs=30, patience=5)
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd()
    folder.mkdir(parents=True, exist_ok=True)
    _plot(result, folder)
    print(f"epochs {result.epochs_run} val_loss {result.val_loss:.4f} auc_roc {result.auc_roc:.4f}")


if __name__ == "__main__":
    main()
