"""Every detector, network or baseline, behind one protocol (protocol.py) and chosen in one
place (registry.py) by `model.kind`:

    network.py       standard, sparse_gate, sparse_projection: the LSTM autoencoders
    pca.py           pca: a linear reconstruction from the leading principal components
    mahalanobis.py   mahalanobis: the distance of each window (or row) from the training ones
    forest.py        iforest: scikit-learn's IsolationForest on the rows

and what they share: reconstruction.py (a reconstruction's errors -> their Gaussian -> scores)
and window_gaussian.py (a Gaussian over flattened windows). All end in the same
window-to-row alignment, so their scores compare row by row; the training run and the logged
scoring model both score through `Detector.score`.
"""

from sparse_lstm_ad.detectors.protocol import Detector, EpochHook, Family, Fitted
from sparse_lstm_ad.detectors.registry import family, kinds_line, unused_model_keys

__all__ = ["Detector", "EpochHook", "Family", "Fitted", "family", "kinds_line", "unused_model_keys"]
