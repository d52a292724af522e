"""The MLflow "model from code" entry: MLflow logs this file instead of a pickled object.

Not imported by the package; `mlflow.pyfunc.log_model(python_model=<this file>)` runs it.
"""

from mlflow.models import set_model

from sparse_lstm_ad.tracking.scoring_model import AnomalyScorer

set_model(AnomalyScorer())
