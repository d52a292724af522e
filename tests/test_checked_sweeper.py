"""The sweeper `train` picks for a basic sweep: it composes again only the jobs that `train`
did not compose and check itself (hydra_plugins/sparse_lstm_ad_sweeper)."""

from __future__ import annotations

from types import SimpleNamespace

from omegaconf import OmegaConf

from hydra_plugins.sparse_lstm_ad_sweeper import checked_sweeper
from sparse_lstm_ad.cli.launch_checks import composed_command, sweeper_choice
from tests.conftest import CONF


class RecordingLoader:
    """Hydra's config loader as the sweeper's validation calls it: each job composed."""

    def __init__(self) -> None:
        self.composed: list[list[str]] = []

    def load_sweep_config(self, master_config: object, sweep_overrides: list[str]) -> None:
        self.composed.append(sweep_overrides)


def test_only_jobs_train_did_not_compose_are_composed_again() -> None:
    argv = ["-m", "+experiment=fast", "seed=0,1", "hydra.sweep.dir=/tmp/x"]
    command = composed_command(argv, CONF)
    assert command is not None and sweeper_choice(command, argv) == ["hydra/sweeper=checked_basic"]
    # Looked up now: Hydra's plugin scan (in the compose above) runs the module again.
    sweeper = checked_sweeper.CheckedBasicSweeper(max_batch_size=None)
    loader = RecordingLoader()
    sweeper.hydra_context = SimpleNamespace(config_loader=loader)  # type: ignore[assignment]
    sweeper.config = OmegaConf.create({})
    # As Hydra's sweeper lists them: no hydra.* override, in its own order.
    checked = [["seed=1", "+experiment=fast"], ["+experiment=fast", "seed=0"]]
    sweeper.validate_batch_is_legal(checked)
    assert loader.composed == []
    sweeper.validate_batch_is_legal([*checked, ["+experiment=fast", "seed=2"]])
    assert loader.composed == [["+experiment=fast", "seed=2"]]


def test_a_sweeper_the_command_chose_is_kept() -> None:
    for argv in (
        ["-m", "seed=0,1", "hydra/sweeper=basic"],  # Hydra's own, named
        ["-m", "+experiment=tune"],  # the preset's Optuna
        ["seed=1"],  # no sweep
    ):
        command = composed_command(argv, CONF)
        assert command is not None and sweeper_choice(command, argv) == [], argv
