"""The real conf/ composes, and wrong values fail with the key's name."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import open_dict, read_write
from omegaconf.errors import ValidationError

from sparse_lstm_ad.cli.launch_checks import check_command, sweep_values
from sparse_lstm_ad.config_checks import ConfigError
from tests.conftest import CONF, compose_config


def test_defaults_compose_to_the_standard_model_on_case2_with_early_stopping() -> None:
    cfg = compose_config()
    assert cfg.data.name == "case2" and cfg.data.seed.n_f2 == 4
    assert cfg.model.kind == "standard" and cfg.model.hidden is None
    assert (cfg.train.epochs, cfg.train.patience, cfg.train.lr_patience) == (300, 10, 5)


def test_notebook_preset_is_the_notebook() -> None:
    cfg = compose_config("+experiment=notebook", "model=sparse")
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.data.window) == (30, 128, 15)
    assert (cfg.train.patience, cfg.train.min_delta, cfg.train.lr_patience) == (5, 0.0, 0)
    assert (cfg.model.hidden, cfg.model.l1, cfg.model.l1_method.value) == (5, 1e-3, "penalty")


PRESETS = sorted(path.stem for path in (CONF / "experiment").glob("*.yaml"))


def _swept(preset: str) -> dict[str, list[str]]:
    """The values a preset's sweep gives each key (hydra.sweeper.params)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", [f"+experiment={preset}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.get("params") or {}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()])
    return {o.get_key_element(): sweep_values(o) for o in parsed}  # an interval: its ends


@pytest.mark.parametrize("preset", PRESETS)
def test_every_experiment_preset_composes_and_validates(preset: str) -> None:
    """Every preset composes and checks against the schema with each value its sweep gives
    each key (the product is what `train.py -m` checks before its first job; 270 jobs for
    the benchmark are too slow here, and a value is checked alone the same way)."""
    check_command([f"+experiment={preset}", "--cfg", "job"], CONF)
    for key, values in _swept(preset).items():
        for value in values:
            check_command([f"+experiment={preset}", f"{key}={value}", "--cfg", "job"], CONF)


@pytest.mark.parametrize(
    ("group", "kind"),
    [
        ("standard", "standard"),
        ("sparse", "sparse_gate"),
        ("sparse_projection", "sparse_projection"),
        ("mahalanobis", "mahalanobis"),
        ("pca", "pca"),
        ("iforest", "iforest"),
    ],
)
def test_model_groups(group: str, kind: str) -> None:
    assert compose_config(f"model={group}").model.kind == kind


def test_fast_preset_is_small() -> None:
    cfg = compose_config("+experiment=fast")
    assert cfg.train.epochs <= 2 and cfg.data.every == 20


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("model.l1=-1", "model.l1"),
        ("data.window=0", "data.window"),
        ("train.validation_split=1.5", "train.validation_split"),
        ("train.batch_size=0", "train.batch_size"),
        ("train.epochs=0", "train.epochs"),
        ("model.hidden=0", "model.hidden"),
        ("scoring.threshold_quantile=1", "scoring.threshold_quantile"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        compose_config(override)


def test_a_test_file_and_a_split_row_are_refused_together() -> None:
    """data.csv.test read its own file and ignored data.csv.test_from without a word."""
    csv = ["data=csv", "data.csv.train=plant_train.csv", "data.csv.test=plant_test.csv"]
    with pytest.raises(ConfigError) as refused:
        compose_config(*csv, "data.csv.test_from=100")
    assert str(refused.value) == (
        "data.csv.test_from=100 is not allowed: must be null where data.csv.test names a test "
        "file: it splits data.csv.train, the only file (or set data.csv.test=null)"
    )
    compose_config(*csv[:2], "data.csv.test_from=100")  # one file, split at a row
    compose_config(*csv)  # two files


@pytest.mark.parametrize(
    "override",
    ["model.hiden=5", "train.epochs=many", "model.gate_activation=softmax", "data.extra=1"],
)
def test_unknown_keys_and_wrong_types_fail_at_compose(override: str) -> None:
    with pytest.raises((ConfigCompositionException, ValidationError)):
        compose_config(override)


def test_unknown_group_option_fails_at_compose() -> None:
    with pytest.raises(ConfigCompositionException, match="model"):
        compose_config("model=transformer")


def _imported(*args: str) -> tuple[str, set[str]]:
    """What `train.py ARGS` prints, and the top-level packages it imported (-X importtime)."""
    import subprocess
    import sys

    from tests.conftest import TRAIN

    result = subprocess.run(
        [sys.executable, "-X", "importtime", str(TRAIN), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    return result.stdout, {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in lines}


def test_help_is_ours_and_loads_neither_mlflow_nor_tensorflow_nor_hydra() -> None:
    out, modules = _imported("--help")
    assert out.startswith("usage: python src/train.py")
    assert "  model: standard, iforest, mahalanobis, pca, sparse, sparse_projection" in out
    assert "Examples:" in out and "--hydra-help" in out
    assert not modules & {"mlflow", "tensorflow", "keras", "hydra", "numpy"}, modules


def test_cfg_job_loads_neither_mlflow_nor_tensorflow() -> None:
    out, modules = _imported("--cfg", "job", "model=sparse")
    assert "kind: sparse_gate" in out
    assert not modules & {"mlflow", "tensorflow", "keras"}, modules


def test_a_command_line_sweep_replaces_the_presets_own() -> None:
    """`-m +experiment=benchmark data=case1,case2 model=sparse,sparse_projection` runs 20 jobs
    (Hydra's sweeper lets the command line win), so the check composes those 20, not 360."""
    from hydra import initialize_config_dir

    from sparse_lstm_ad.cli.launch_checks import sweep_jobs

    overrides = ["+experiment=benchmark", "data=case1,case2", "model=sparse,sparse_projection"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        jobs = sweep_jobs(overrides, True, "config")
        assert len(jobs) == 2 * 2 * 5 and jobs[0] == [  # in Hydra's order: params first
            "seed=0",
            "data=case1",
            "model=sparse",
            "+experiment=benchmark",
        ]
        assert len(sweep_jobs(["+experiment=benchmark"], True, "config")) == 6 * 12 * 5


def test_a_command_line_value_replaces_a_swept_preset_key() -> None:
    """`-m +experiment=benchmark seed=0 data=case1 model=pca` runs one job, as Hydra launches
    it: the checks compose that one (they composed the preset's 360, loading 12 data sets), and
    the launched jobs read from the composed config (batches, progress) are the same."""
    from hydra import compose, initialize_config_dir

    from sparse_lstm_ad.cli.launch_checks import sweep_jobs
    from sparse_lstm_ad.cli.sweep_jobs import launched_jobs

    overrides = ["+experiment=benchmark", "seed=0", "data=case1", "model=pca"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        jobs = sweep_jobs(overrides, True, "config")
        assert jobs == [["seed=0", "data=case1", "model=pca", "+experiment=benchmark"]]
        composed = compose("config", overrides=overrides, return_hydra_config=True)
        with open_dict(composed), read_write(composed):
            composed.hydra.overrides.task = overrides  # as Hydra records a multirun's
        assert launched_jobs(composed) == jobs
        tuned = sweep_jobs(["+experiment=tune", "model.layers=2"], True, "config")
        assert all("model.layers=2" in job for job in tuned)
        assert not any(o.startswith("model.layers=1") for job in tuned for o in job)
