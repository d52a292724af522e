"""Hydra's basic sweeper, without composing again the jobs `train` composed and checked.

Before it launches a batch, BasicSweeper composes every job's config to catch a mistake early:
0.09 s a job on 2 cores (0.73 s for 8 jobs, 9 s for 100), on the sweep's path to its first
job, while a joblib sweep's workers are still importing beside it. `train` has by then
composed and checked the same jobs itself (sparse_lstm_ad/cli/launch_checks.py). A job it
composed in this process is not composed again here; any other job (a sweep started without
those checks) is validated as BasicSweeper validates it. `train` picks this sweeper for a
basic sweep (launch_checks.sweeper_choice: `hydra/sweeper=checked_basic` added to the
command); a command that names its sweeper, `hydra/sweeper=basic` included, keeps it.

Hydra loads sweepers only from the `hydra_plugins` namespace, hence this package's place.
"""

# No `from __future__ import annotations`: Hydra runs plugin modules outside sys.modules while
# it scans them, where a dataclass cannot resolve annotations written as strings.
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore


@dataclass
class CheckedBasicSweeperConf:
    _target_: str = "hydra_plugins.sparse_lstm_ad_sweeper.checked_sweeper.CheckedBasicSweeper"
    # Optional[...] as in Hydra's BasicSweeperConf: what OmegaConf reads in a structured config.
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper",
    name="checked_basic",
    node=CheckedBasicSweeperConf,
    provider="sparse-lstm-ad",
)


class CheckedBasicSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        from sparse_lstm_ad.cli.launch_checks import composed

        unchecked = [job for job in batch if not composed(job)]
        if unchecked:
            super().validate_batch_is_legal(unchecked)
