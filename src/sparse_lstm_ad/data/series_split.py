"""The train/test split that every data source produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SeriesSplit:
    train: np.ndarray  # (n_train, k) normal rows only
    test: np.ndarray  # (n_test, k)
    test_labels: np.ndarray | None  # (n_test,) 1 = anomalous row; None when unlabelled
    channels: list[str]
    # (n_test, k) 1 = this channel is held responsible at this row; None when not known
    test_channel_labels: np.ndarray | None = None
    test_times: pd.Series | None = None  # the test rows' time column (CSV), for plots

    def every(self, step: int) -> SeriesSplit:
        """Keep every `step`-th row of each part, after the split so the split point stays."""
        if step == 1:
            return self
        return SeriesSplit(
            train=self.train[::step],
            test=self.test[::step],
            test_labels=None if self.test_labels is None else self.test_labels[::step],
            channels=self.channels,
            test_channel_labels=(
                None if self.test_channel_labels is None else self.test_channel_labels[::step]
            ),
            test_times=None if self.test_times is None else self.test_times.iloc[::step],
        )
