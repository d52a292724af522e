"""The battery of bad inputs: each is one line naming the key or file, exit 2, no run started.

In-process: `launch_checks.check_command` is the gate every `train.py` command passes before
Hydra starts a job, so checking it checks the command. A few go through `train.cli` for the
exit code and the printed line; tests/test_reliability.py runs some as real processes.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sparse_lstm_ad.cli.launch_checks import UsageError, check_command
from sparse_lstm_ad.tracking import store as tracking_store
from tests.conftest import CONF, ROOT, store_runs

FAST = "+experiment=fast"
CORR = "data=correlated"

# (overrides, text the one line must hold)
BAD_VALUES = [
    (["model.l1=-1"], "model.l1=-1.0 is not allowed: must be >= 0"),
    (["data.window=0"], "data.window=0 is not allowed: must be >= 1"),
    (["data.stride=0"], "data.stride=0 is not allowed"),
    (["data.every=0"], "data.every=0 is not allowed"),
    (["train.validation_split=0"], "train.validation_split=0.0 is not allowed: must be in (0, 1)"),
    (["train.validation_split=1.5"], "train.validation_split=1.5 is not allowed"),
    (["train.batch_size=0"], "train.batch_size=0 is not allowed: must be >= 1"),
    (["train.epochs=0"], "train.epochs=0 is not allowed: must be >= 1"),
    (["train.learning_rate=0"], "train.learning_rate=0.0 is not allowed: must be > 0"),
    (["train.patience=-1"], "train.patience=-1 is not allowed"),
    (["model.hidden=0"], "model.hidden=0 is not allowed: must be >= 1"),
    (["model.layers=0"], "model.layers=0 is not allowed"),
    (["model.projection_units=0"], "model.projection_units=0 is not allowed"),
    (["scoring.threshold_quantile=1"], "scoring.threshold_quantile=1.0 is not allowed"),
    (["scoring.shrinkage=2"], "scoring.shrinkage=2.0 is not allowed: must be in [0, 1]"),
    (["scoring.pot_risk=0.5"], "scoring.pot_risk=0.5 is not allowed"),
    (["threads=-1"], "threads=-1 is not allowed"),
    (["train.learning_rate=inf"], "train.learning_rate=inf is not allowed: must be a finite"),
    (["train.learning_rate=nan"], "train.learning_rate=nan is not allowed: must be a finite"),
    (["model.l1=-inf"], "model.l1=-inf is not allowed: must be a finite number"),
    (["seed=-1"], "seed=-1 is not allowed: must be an integer in [0, 2**32 - 1]"),
    (["seed=4294967296"], "seed=4294967296 is not allowed"),
    ([CORR, "data.correlated.seed=-1"], "data.correlated.seed=-1 is not allowed"),
    ([CORR, "data.correlated.groups=64"], "data.correlated.groups=64 is not allowed"),
    (["data.window=400"], "data.window=400 is longer than the shortest part of the series"),
]
BAD_COMPOSITION = [
    (["model.hiden=5"], "Key 'hiden' not in 'ModelConfig' (did you mean model.hidden?)"),
    (["nokey=1"], "nokey: Key 'nokey' not in 'Config' (its keys: data, model,"),
    (["train.epochs=many"], "train.epochs: Value 'many' of type 'str' could not be converted"),
    (["train.epochs=null"], "train.epochs: field 'train.epochs' is not Optional"),
    (["seed=1.5"], "seed: Value '1.5' of type 'float' could not be converted to Integer"),
    (["model.gate_activation=softmax"], "model.gate_activation: Invalid value 'softmax'"),
    (["model.kind=lstm"], "model.kind=lstm is not a detector: the kinds are iforest, mahalanobis"),
    (["scoring.inverse=cholesky"], "scoring.inverse: Invalid value 'cholesky'"),
    (["tracking.log_model=maybe"], "tracking.log_model: Value 'maybe' is not a valid bool"),
    (["model=transformer"], "model=transformer: no such option in conf/model/ (the options:"),
    (["data=nope"], "data=nope: no such option in conf/data/"),
    (["train=slow"], "train=slow: no such option in conf/train/"),
    (["+experiment=nope"], "experiment=nope: no such option in conf/experiment/"),
    (["hydra/launcher=nope"], "hydra/launcher=nope: no such option"),
    (["train.epochs=[1,2"], "override 'train.epochs=[1,2' cannot be read"),
    (["train.batch_size=0,64"], "Ambiguous value for argument 'train.batch_size=0,64'"),
    (["+train.no_such_key=3"], "train.no_such_key is not a key of the config"),
    (["+train.learning_rat=0.1"], "did you mean train.learning_rate?"),
    (["++model.hiddden=3"], "model.hiddden is not a key of the config: did you mean model.hidden"),
]
BAD_SWEEPS = [
    (["-m", "train.batch_size=0,64"], "train.batch_size=0 is not allowed"),
    (["-m", "train.batch_size=64,0"], "train.batch_size=0 is not allowed"),
    (["-m", "model=standard,transformer"], "model=transformer: no such option"),
    (["-m", "seed=0,-1"], "seed=-1 is not allowed"),
    (["-m", "data.window=5,400"], "data.window=400 is longer than the shortest part"),
    (
        ["-m", "hydra/sweeper=optuna", "train.learning_rate=interval(0,0.1)"],
        "train.learning_rate=0.0 is not allowed: must be > 0",
    ),
    (["-m", "hydra/sweeper=optuna", "model.layers=choice(1,0)"], "model.layers=0 is not allowed"),
    (
        ["-m", "hydra.sweeper.params.data=case2,case1"],
        "hydra.sweeper.params.data=case2,case1: Hydra's own config cannot be swept; sweep the "
        "key itself on the command line: data=case2,case1 (it replaces a preset's list)",
    ),
    (["-m", "hydra.verbose=true,false"], "hydra.verbose=true,false: Hydra's own config cannot"),
    (  # no preset sweeps: hydra.sweeper.params is null, and OmegaConf asserted
        ["-m", "hydra.sweeper.params.data=case1"],
        "hydra.sweeper.params.data=case1: no preset sweeps here (hydra.sweeper.params is "
        "empty); give the key itself on the command line: data=case1",
    ),
    (["hydra.sweeper.params.seed=3"], "give the key itself on the command line: seed=3"),
    (["selection.enabled=true"], "selection.enabled=true (+experiment=select) chooses among a"),
]
BAD_STORES = [
    (["tracking.uri=http://127.0.0.1:9"], "tracking.uri=http://127.0.0.1:9 is not reachable"),
    (["tracking.uri=bogus://nowhere"], "tracking store bogus://nowhere cannot be used"),
    (
        ["tracking.uri=postgresql://user@127.0.0.1:9/db"],
        "tracking.uri=postgresql://user@127.0.0.1:9/db is not reachable: nothing answers",
    ),
    (["tracking.register_as=team/model"], "tracking.register_as=team/model: Invalid model name"),
    (["tracking.register_as=a:b"], "Names cannot contain '/' or ':'"),
    (["tracking.register_as="], "tracking.register_as=: Missing value for required parameter"),
]
BAD_FLAGS = [(["--no-such-flag"], "unrecognized arguments: --no-such-flag")]
ALL = BAD_VALUES + BAD_COMPOSITION + BAD_SWEEPS + BAD_STORES + BAD_FLAGS


def _argv(tmp_path: Path, overrides: list[str]) -> list[str]:
    flags = [o for o in overrides if o.startswith("-m")]
    return [
        *flags,
        FAST,
        *[o for o in overrides if o not in flags],
        f"tracking.dir={tmp_path / 'mlruns'}",
        f"hydra.run.dir={tmp_path / 'outputs'}",
        f"hydra.sweep.dir={tmp_path / 'multirun'}",
    ]


def _refused(tmp_path: Path, overrides: list[str]) -> str:
    """The one line a command is refused with; fails if it is accepted or a run was started
    (of any status: a refused command must not leave a FAILED or KILLED run either)."""
    with pytest.raises(UsageError) as refused:
        check_command(_argv(tmp_path, overrides), CONF)
    message = str(refused.value)
    assert "\n" not in message, message
    assert store_runs(tmp_path / "mlruns") == []
    return message


@pytest.mark.parametrize(("overrides", "message"), ALL, ids=[" ".join(o) for o, _ in ALL])
def test_a_bad_input_is_one_line(overrides: list[str], message: str, tmp_path: Path) -> None:
    assert message in _refused(tmp_path, overrides)


def test_a_store_folder_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    argv = [FAST, f"tracking.dir={blocker / 'mlruns'}", f"hydra.run.dir={tmp_path}"]
    with pytest.raises(UsageError, match="cannot hold the store"):
        check_command(argv, CONF)


def test_a_deleted_experiment_is_explained(tmp_path: Path) -> None:
    check_command(_argv(tmp_path, ["tracking.experiment=gone"]), CONF)  # creates it
    tracking_store._prepared.clear()  # a command prepares a store once: this is a new command
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    client.delete_experiment(client.get_experiment_by_name("gone").experiment_id)
    message = _refused(tmp_path, ["tracking.experiment=gone"])
    assert "tracking.experiment=gone was deleted" in message
    database = (tmp_path / "mlruns" / "mlflow.db").resolve()
    restore = f"MLFLOW_TRACKING_URI=sqlite:///{database} mlflow experiments restore"
    assert f"restore it ({restore} --experiment-id" in message


def test_an_ambiguous_value_keeps_every_way_out_and_the_quoted_one_works(tmp_path: Path) -> None:
    """A file name with a comma: Hydra's three ways out stay in the line (the second, quote it,
    is the fix), its example quoted for a shell, and the value so quoted is read."""
    csv = ["data=csv", "data.csv.train=plant.csv"]
    message = _refused(tmp_path, [*csv, "data.csv.test=plant,test.csv"])
    assert "1. To use it as a list, use key=[value1,value2]" in message
    assert "2. To use it as string, quote the value: \"key='value1,value2'\"" in message
    assert "3. To sweep over it, add --multirun" in message
    # What the shell passes on for "data.csv.test='plant,test.csv'": read, not refused.
    check_command(
        [*_argv(tmp_path, [*csv, "data.csv.test='plant,test.csv'"]), "--cfg", "job"], CONF
    )


def _csv_cases(folder: Path) -> dict[str, tuple[list[str], str]]:
    """Bad CSV inputs: (overrides, the text the one line must hold)."""
    rows = np.arange(120, dtype=float)
    good = pd.DataFrame({"t": rows, "a": np.sin(rows), "b": np.cos(rows), "label": 0})
    files = {
        "good": good,
        "text": good.assign(a=["x", *list(good["a"].iloc[1:])]),
        "nan": good.assign(b=[np.nan, *list(good["b"].iloc[1:])]),
        "constant": good.assign(b=1.0),
        "labels": good.assign(label=2),
    }
    for name, frame in files.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    good.rename(columns={"b": "a"}).to_csv(folder / "twice.csv", index=False)
    (folder / "fake.csv.gz").write_text("t,a\n1,2\n")
    (folder / "cut.csv.gz").write_bytes(gzip.compress((folder / "good.csv").read_bytes())[:200])
    (folder / "empty.csv").write_text("")
    (folder / "header.csv").write_text("t,a,b\n")
    (folder / "bad_labels.txt").write_text("10-20:1\nnonsense\n")
    split = ["data=csv", f"data.csv.dir={folder}", "data.csv.test_from=80"]
    split += ["data.csv.time_column=t", "data.window=5"]

    def train(name: str, *more: str) -> list[str]:
        return [*split, f"data.csv.train={name}", *more]

    return {
        "missing file": (
            ["data=csv", f"data.csv.train={folder / 'absent.csv'}", "data.csv.test_from=5"],
            f"{folder / 'absent.csv'}: no such file",
        ),
        "no train file": (["data=csv"], "data.csv.train is not set"),
        "missing label column": (
            train("good.csv", "data.csv.label_column=y"),
            "column 'y' (data.csv.label_column) is missing",
        ),
        "non-numeric channel": (
            train("text.csv", "data.csv.features=[a,b]"),
            "column 'a' is not numeric: 'x' at line 2",
        ),
        "NaN": (train("nan.csv"), "column 'b' has NaN or inf at line 2"),
        "constant channel": (train("constant.csv"), "column 'b' is constant on the training"),
        "labels not 0 or 1": (
            train("labels.csv", "data.csv.label_column=label"),
            "column 'label' (labels) must hold 0 or 1: 2 at line 82",
        ),
        "duplicated column": (train("twice.csv"), "column name 'a' appears twice in the header"),
        "fake gzip": (train("fake.csv.gz"), "fake.csv.gz: a truncated or corrupt compressed"),
        "truncated gzip": (train("cut.csv.gz"), "cut.csv.gz: a truncated or corrupt compressed"),
        "empty file": (train("empty.csv"), "empty.csv: not a readable CSV file"),
        "header only": (
            ["data=csv", f"data.csv.dir={folder}", "data.csv.train=header.csv"],
            "header.csv: no data rows",
        ),
        "test_from past the end": (
            [*train("good.csv"), "data.csv.test_from=500"],
            "data.csv.test_from=500 must lie in [1, 119]",
        ),
        "no features": (train("good.csv", "data.csv.features=[]"), "data.csv.features is an empty"),
        "unknown feature": (
            train("good.csv", "data.csv.features=[zz]"),
            "column 'zz' (a feature or time column) is missing",
        ),
        "channel labels": (
            train("good.csv", "data.csv.channel_labels=bad_labels.txt"),
            "bad_labels.txt: line 2 'nonsense' is not `start-end:channel,channel`",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "no train file",
        "missing label column",
        "non-numeric channel",
        "NaN",
        "constant channel",
        "labels not 0 or 1",
        "duplicated column",
        "fake gzip",
        "truncated gzip",
        "empty file",
        "header only",
        "test_from past the end",
        "no features",
        "unknown feature",
        "channel labels",
    ],
)
def test_a_bad_csv_is_one_line_naming_the_file(case: str, tmp_path: Path) -> None:
    overrides, message = _csv_cases(tmp_path)[case]
    assert message in _refused(tmp_path, overrides)


def test_the_cli_prints_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "src"))
    import train

    monkeypatch.setattr(sys, "argv", ["train.py", *_argv(tmp_path, ["-m", "seed=0,-1"])])
    with pytest.raises(SystemExit) as exited:
        train.cli()
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: seed=-1 is not allowed: must be an integer")
    assert captured.err.count("\n") == 1 and captured.out == ""


def _train_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, experiment: str, overrides: list[str]
) -> int:
    """Run train.py's cli in this process with `experiment` for the fast preset; the exit
    code, once no store was opened and no run started."""
    monkeypatch.syspath_prepend(str(ROOT / "src"))
    import train

    argv = _argv(tmp_path, overrides)
    argv[argv.index(FAST)] = experiment
    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    with pytest.raises(SystemExit) as exited:
        train.cli()
    assert not (tmp_path / "mlruns").exists()  # no store opened, no run started
    return int(exited.value.code)


def test_a_sweep_over_hydras_own_config_is_refused_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's docs said to add a data set with hydra.sweeper.params.data=...: Hydra
    refused it only after the checks had composed 360 jobs and loaded 12 data sets (85 s)."""
    sweep = ["-m", "hydra.sweeper.params.data=case2,case1"]
    assert _train_refuses(tmp_path, monkeypatch, "+experiment=benchmark", sweep) == 2
    assert capsys.readouterr().err == (
        "error: hydra.sweeper.params.data=case2,case1: Hydra's own config cannot be swept; sweep "
        "the key itself on the command line: data=case2,case1 (it replaces a preset's list)\n"
    )


def test_a_selection_without_m_is_refused_before_any_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The select preset's candidates are its sweep's: without -m it trained the default model
    alone, with no selection and no word of it."""
    single = ["model=pca", "data.every=10"]
    assert _train_refuses(tmp_path, monkeypatch, "+experiment=select", single) == 2
    assert capsys.readouterr().err == (
        "error: selection.enabled=true (+experiment=select) chooses among a sweep's candidates "
        "(its model values): add -m before the overrides (-m +experiment=select ...)\n"
    )


def test_a_database_that_answers_but_refuses_is_told_at_once(tmp_path: Path) -> None:
    """Something listens on the port but is no PostgreSQL: one login attempt, not MLflow's ten.

    Counted in connections, not seconds: the reachability dial, then libpq's login (which may
    try once more without SSL). MLflow's retries would dial ten times or more."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted: list[int] = []

    def hang_up() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # the listener closed: the test is over
                return
            accepted.append(1)
            connection.close()

    hangs_up = threading.Thread(target=hang_up, daemon=True)
    hangs_up.start()
    try:
        message = _refused(tmp_path, [f"tracking.uri=postgresql://user@127.0.0.1:{port}/db"])
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # ends the accept in the thread
        listener.close()
        hangs_up.join(timeout=10)
    assert message.startswith(f"tracking.uri=postgresql://user@127.0.0.1:{port}/db cannot be")
    assert 2 <= len(accepted) <= 3, accepted


def test_optuna_with_no_trial_is_one_line(tmp_path: Path) -> None:
    """n_trials=0 passed the checks, opened the sweep's parent run, and ended in Optuna's
    traceback (`No trials are completed yet`), the parent left KILLED."""
    overrides = ["-m", "model=sparse", "hydra.sweeper.n_trials=0"]
    argv = _argv(tmp_path, overrides)
    argv[argv.index(FAST)] = "+experiment=tune"
    with pytest.raises(UsageError, match=r"^hydra.sweeper.n_trials=0: give at least 1 trial$"):
        check_command(argv, CONF)
    assert store_runs(tmp_path / "mlruns") == []


def test_a_config_file_that_is_no_yaml_is_one_line_naming_it(tmp_path: Path) -> None:
    """A syntax error in a conf/ file was a 108-line traceback from the YAML parser."""
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "broken.yaml").write_text("kind: pca\npca_variance: [5\n")
    with pytest.raises(UsageError) as refused:
        check_command(_argv(tmp_path, ["model=broken"]), conf)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{conf / 'model' / 'broken.yaml'} line 3")
    assert message.endswith("(not valid YAML)")
    # A Latin-1 byte, a control character: no position, and they escaped as tracebacks.
    for content in (b"kind: pca\n# caf\xe9\n", b"kind: pca \x07\n"):
        (conf / "model" / "broken.yaml").write_bytes(content)
        with pytest.raises(UsageError, match=r"^a config file of conf/ cannot be read: "):
            check_command(_argv(tmp_path, ["model=broken"]), conf)
