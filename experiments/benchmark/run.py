"""Benchmark: our pipeline against a naive re-implementation of the seed notebook's.

    .venv/bin/python experiments/benchmark/run.py [--quick]

One process, seed case 2, both pipelines on the same data. Prints a Markdown report: phase
times as reference / ours, AUC-ROC of both, peak RSS, the FLOP floor of an epoch, a scale
case (k=200, 100,000 rows, in a subprocess of its own), start-up, and the whole CLI run
against the reference script. `--quick` runs fewer epochs (for trying the script itself).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import reference  # noqa: E402

EPOCHS = 30  # the seed config's maximum; the "same epochs" runs train exactly this many
PATIENCE = 5  # the seed config's; both pipelines stop on it in the early-stopping runs


@dataclass
class Row:
    what: str
    reference: float | None  # seconds (or other unit in `unit`)
    ours: float | None
    target: str = ""
    unit: str = "s"

    @property
    def ratio(self) -> float | None:
        if self.reference is None or self.ours is None or self.ours == 0:
            return None
        return self.reference / self.ours


def best_time(function: Callable[[], object], repeat: int = 5) -> float:
    """Fastest of `repeat` calls: the least disturbed by other work on the machine."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# --- our pipeline, phase by phase, from the package's own functions -------------------------


def run_ours(epochs: int, patience: int) -> dict[str, object]:
    from sparse_lstm_ad.config import Config, DataConfig, TrainConfig
    from sparse_lstm_ad.data import make_windows
    from sparse_lstm_ad.metrics import auc_roc
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.pipeline import prepare_rows, score_parts
    from sparse_lstm_ad.training import fit_autoencoder, make_repeatable

    cfg = Config(data=DataConfig(name="case2"), train=TrainConfig(epochs=epochs, patience=patience))
    make_repeatable(cfg.seed, cfg.train.deterministic)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    rows = prepare_rows(cfg)
    windows = {p: make_windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    seconds["windowing"] = time.perf_counter() - started
    model = build_model(cfg.model, cfg.data.window, len(rows.channels))
    mark = time.perf_counter()
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train)
    seconds["fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    scored = score_parts(model, cfg, rows, windows)
    seconds["predict+scoring"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - started
    return {
        "auc_roc": auc_roc(scored.test, rows.test_labels),
        "val_loss": min(fit.history["val_loss"]),
        "epochs_run": fit.epochs_run,
        "epoch_seconds": fit.history["epoch_seconds"],
        "seconds": seconds,
    }


# --- the sections of the report ---------------------------------------------------------------


def windowing_rows(frame: object) -> list[Row]:
    from sparse_lstm_ad.data import make_windows

    train = frame.iloc[: reference.TRAIN_ROWS]  # type: ignore[attr-defined]
    values = train.to_numpy()
    loop = best_time(lambda: reference.make_windows_loop(train), repeat=1)
    view = best_time(lambda: make_windows(values, reference.WINDOW), repeat=50)
    copy = best_time(lambda: np.ascontiguousarray(make_windows(values, reference.WINDOW)), 20)
    return [
        Row("windowing, 10,000 x 5 rows (view, as the pipeline uses it)", loop, view, ">= 100x"),
        Row("windowing, materialised copy of the view", loop, copy, ">= 100x"),
    ]


def scoring_rows() -> list[Row]:
    """Error model + Mahalanobis scores of given errors, the test part's shape (4985, 15, 5)."""
    from sparse_lstm_ad.data import window_starts
    from sparse_lstm_ad.scoring import fit_error_model, mahalanobis_scores, score_rows

    rng = np.random.default_rng(0)
    train_errors = rng.normal(size=(8986, 15, 5))
    test_errors = rng.normal(size=(4986, 15, 5))
    mu, inv = reference.fit_error_gaussian(train_errors)
    loop = best_time(lambda: reference.mahalanobis_loop(test_errors, mu, inv).mean(axis=1), 1)
    model = fit_error_model(train_errors)
    starts = window_starts(5000, 15, 1)
    ours_d = best_time(lambda: mahalanobis_scores(test_errors, model), 20)
    ours_rows = best_time(lambda: score_rows(test_errors, starts, 5000, model), 10)
    fit_ref = best_time(lambda: reference.fit_error_gaussian(train_errors), 5)
    fit_ours = best_time(lambda: fit_error_model(train_errors), 5)
    return [
        Row("Mahalanobis of given errors, 74,790 points", loop, ours_d, ">= 100x"),
        # Not the target's row: the reference neither aligns windows to rows nor attributes.
        Row("  ... + row alignment + per-channel contributions", loop, ours_rows),
        Row("error model fit (mean, pinv of covariance)", fit_ref, fit_ours),
    ]


def pipeline_rows(same: tuple, stopped: tuple) -> tuple[list[Row], list[str]]:
    ref_same, ours_same = same
    ref_stop, ours_stop = stopped

    def per_epoch(times: list[float]) -> float:
        return statistics.median(times[1:])  # the first epoch also compiles

    val_gap = ours_same["val_loss"] / ref_same.val_loss - 1
    rows = [
        Row(
            "training per epoch, batch 128 (median, epochs 2+)",
            per_epoch(ref_same.epoch_seconds),
            per_epoch(ours_same["epoch_seconds"]),
            ">= 4x",
        ),
        Row(
            "first epoch (tracing, compiling)",
            ref_same.epoch_seconds[0],
            ours_same["epoch_seconds"][0],
        ),
        Row(f"fit, {EPOCHS} epochs", ref_same.seconds["fit"], ours_same["seconds"]["fit"]),
        Row(
            "predict + error model + scores",
            ref_same.seconds["predict"] + ref_same.seconds["scoring"],
            ours_same["seconds"]["predict+scoring"],
        ),
        Row(
            f"whole pipeline, windows -> fit -> scores, {EPOCHS} epochs",
            ref_same.seconds["total"],
            ours_same["seconds"]["total"],
            ">= 4x",
        ),
        Row(
            f"whole pipeline to early stopping (patience {PATIENCE})",
            ref_stop.seconds["total"],
            ours_stop["seconds"]["total"],
        ),
    ]
    notes = [
        f"- AUC-ROC per test row, the same unit for both (target: ours not lower): "
        f"{EPOCHS} epochs: reference {ref_same.auc_roc_rows:.4f}, ours "
        f"{ours_same['auc_roc']:.4f}; to early stopping: reference {ref_stop.auc_roc_rows:.4f} "
        f"({ref_stop.epochs_run} epochs), ours {ours_stop['auc_roc']:.4f} "
        f"({ours_stop['epochs_run']} epochs). On the notebook's own unit (per window, labelled "
        f"by its first row) the reference scores {ref_same.auc_roc:.4f} and "
        f"{ref_stop.auc_roc:.4f}.",
        f"- best validation loss after {EPOCHS} epochs: reference {ref_same.val_loss:.4f}, ours "
        f"{ours_same['val_loss']:.4f} ({val_gap:+.1%}; target within 5 %).",
    ]
    return rows, notes


def lstm_flops(inputs: int, hidden: int) -> int:
    # Per step and sample: the four gates' matmuls on [x, h] plus bias and ~8 elementwise ops.
    return 2 * (inputs + hidden) * 4 * hidden + 12 * hidden


def epoch_flops(n_train: int, n_val: int, window: int, k: int, hidden: int) -> float:
    step = lstm_flops(k, hidden) + lstm_flops(hidden, hidden) + 2 * hidden * k + k
    forward = window * step
    return 3.0 * forward * n_train + forward * n_val  # training fwd+bwd ~ 3x fwd; val fwd


def matmul_rate() -> float:
    """FLOP/s of a float32 2048 x 2048 matmul (BLAS, all cores): the machine's ceiling."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    seconds = best_time(lambda: a @ a, repeat=5)
    return 2 * 2048**3 / seconds


def lstm_matmul_rate(reps: int = 2000) -> float:
    """FLOP/s of the LSTM's own matmul, a batch of 128 x [x, h] (10) by the gates (20), run
    back to back in one XLA loop: the rate this model's arithmetic can reach here."""
    import tensorflow as tf

    a, b = tf.random.normal((128, 10)), tf.random.normal((10, 20))

    @tf.function(jit_compile=True)
    def loop(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        def body(i: tf.Tensor, total: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            # Depends on i, so XLA cannot hoist the matmul out of the loop.
            return i + 1, total + tf.reduce_sum(tf.matmul(a + tf.cast(i, tf.float32), b))

        return tf.while_loop(lambda i, _: i < reps, body, (0, 0.0))[1]

    loop(a, b)  # compile
    seconds = best_time(lambda: loop(a, b), repeat=3)
    return 2 * 128 * 10 * 20 * reps / seconds


def floor_notes(ours_epoch: float) -> tuple[list[Row], list[str], float]:
    """Our epoch against the FLOP floor; also returns the floor (s) for the other epoch rows."""
    flops = epoch_flops(8986, 986, 15, 5, 5)
    rate, narrow = matmul_rate(), lstm_matmul_rate()
    floor, shape_floor = flops / rate, flops / narrow
    rows = [
        Row("our epoch as a multiple of the FLOP floor", None, ours_epoch / floor, "<= 5x", "x"),
        Row(
            "our epoch as a multiple of the floor at the LSTM's matmul shape",
            None,
            ours_epoch / shape_floor,
            unit="x",
        ),
    ]
    return (
        rows,
        [
            f"- FLOP floor: one epoch is {flops / 1e6:.0f} MFLOP (LSTM/Dense, fwd+bwd = 3x fwd, "
            f"plus validation); a float32 2048^2 matmul runs at {rate / 1e9:.1f} GFLOP/s here, "
            f"so the floor is {floor * 1e3:.2f} ms; our epoch takes {ours_epoch * 1e3:.1f} ms = "
            f"{ours_epoch / floor:.0f}x the floor. The LSTM's own matmul (128 x 10 by 10 x 20), "
            f"back to back in an XLA loop, runs at {narrow / 1e9:.1f} GFLOP/s: at that rate the "
            f"epoch's FLOPs take {shape_floor * 1e3:.1f} ms, and our epoch is "
            f"{ours_epoch / shape_floor:.1f}x that.",
        ],
        floor,
    )


# --- subprocesses: start-up, CLI runs, the scale case -----------------------------------------


def run_child(command: list[str], cwd: Path = ROOT) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) of that child alone, and its output.

    Through /usr/bin/time: a child forked straight from this large process would report this
    process's RSS as its own peak (Linux keeps ru_maxrss across fork and exec).
    """
    with tempfile.TemporaryDirectory() as tmp:
        peak = Path(tmp) / "peak_kb"
        started = time.perf_counter()
        result = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", str(peak), *command],
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"{command} failed:\n{result.stderr[-3000:]}")
        return wall, int(peak.read_text().split()[-1]) / 1024, result.stdout + result.stderr


def startup_rows() -> tuple[list[Row], list[str]]:
    train = [sys.executable, "src/train.py"]
    helps = [run_child([*train, "--help"])[0] for _ in range(3)]
    cfgs = [run_child([*train, "--cfg", "job"])[0] for _ in range(3)]
    imports = run_child([sys.executable, "-X", "importtime", "src/train.py", "--help"])[2]
    # -X importtime writes to stderr, which run_child returns after stdout.
    loads_tf = "tensorflow" in imports
    return [
        Row("`src/train.py --help` (best of 3)", None, min(helps), "< 1.5 s"),
        Row("`src/train.py --cfg job` (best of 3)", None, min(cfgs)),
    ], [f"- `--help` imports TensorFlow: {'YES' if loads_tf else 'no'}."]


def cli_rows() -> tuple[list[Row], list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_child(
            [
                sys.executable,
                "src/train.py",
                f"tracking.dir={tmp}/mlruns",
                f"hydra.run.dir={tmp}/outputs",
            ]
        )
        ref = run_child([sys.executable, str(HERE / "reference.py"), f"{tmp}/reference"])
    return [
        Row(
            "whole CLI run (seed config, case 2, MLflow) vs reference script",
            ref[0],
            ours[0],
            ">= 1.5x",
        ),
        Row("peak RSS of that run", ref[1], ours[1], unit="MB"),
    ], [f"- reference script: {next(li for li in ref[2].splitlines() if li.startswith('epochs'))}"]


def epoch_rows(floor: float) -> tuple[list[Row], list[str]]:
    """Our epoch at batch 1024 (own process): the same samples and FLOPs in fewer, wider steps."""
    small, large = (
        child_json([sys.executable, __file__, "--epoch-batch", b]) for b in ("128", "1024")
    )
    return [
        Row(
            "our epoch, batch 1024, as a multiple of the FLOP floor",
            None,
            large["median"] / floor,
            unit="x",
        ),
    ], [
        f"- our epoch in a process of its own: {small['median'] * 1e3:.1f} ms at batch 128, "
        f"{large['median'] * 1e3:.1f} ms at batch 1024 (the same samples and FLOPs in 8x fewer "
        "steps)."
    ]


def epoch_case(batch: int, epochs: int = 8) -> None:
    """Median seconds of our epochs 2+ on seed case 2; prints one JSON line (own process)."""
    from sparse_lstm_ad.config import Config, TrainConfig
    from sparse_lstm_ad.data import make_windows
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.pipeline import prepare_rows
    from sparse_lstm_ad.training import fit_autoencoder, make_repeatable

    cfg = Config(train=TrainConfig(epochs=epochs, patience=epochs, batch_size=batch))
    make_repeatable(cfg.seed, cfg.train.deterministic)
    rows = prepare_rows(cfg)
    windows = {p: make_windows(getattr(rows, p), cfg.data.window) for p in ("train", "val")}
    model = build_model(cfg.model, cfg.data.window, len(rows.channels))
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train)
    print(json.dumps({"median": statistics.median(fit.history["epoch_seconds"][1:])}))


def child_json(command: list[str]) -> dict:
    """The JSON line a child mode of this script prints."""
    _, _, text = run_child(command)
    return json.loads(next(line for line in text.splitlines() if line.startswith("{")))


def sweep_rows() -> tuple[list[Row], list[str]]:
    """The same 8-job multirun through Hydra's serial launcher and through joblib."""
    sweep = ["src/train.py", "-m", "model=standard,sparse", "data=case1,case2", "seed=0,1"]
    sweep += [f"train.epochs={EPOCHS}"]
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, launcher in (("serial", []), ("joblib", ["hydra/launcher=joblib"])):
            where = [f"tracking.dir={tmp}/{name}/mlruns", f"hydra.sweep.dir={tmp}/{name}/out"]
            walls[name] = run_child([sys.executable, *sweep, *launcher, *where])[0]
    return [
        Row(
            "8-job sweep, seed config: serial launcher vs joblib (a worker per core)",
            walls["serial"],
            walls["joblib"],
            ">= 1.8x",
        )
    ], [f"- 8-job sweep: `{' '.join(sweep)}` (+ `hydra/launcher=joblib`), each into a new store."]


def scale_rows() -> tuple[list[Row], list[str]]:
    figures = child_json([sys.executable, __file__, "--scale"])
    rows = [
        Row(f"scale k=200, 100,000 rows: fit {figures['epochs']} epochs", None, figures["fit"]),
        Row("scale: predict + error model + scores (pipeline.score_parts)", None, figures["score"]),
        Row("scale: peak RSS after fit", None, figures["rss_fit"], "< 2000 MB", "MB"),
        Row("scale: peak RSS after scoring", None, figures["rss_score"], "< 2000 MB", "MB"),
    ]
    notes = [
        f"- scale case: {figures['train_windows']} training windows, per-epoch seconds "
        f"{[round(s, 2) for s in figures['epoch_seconds']]}; AUC-ROC not meaningful "
        "(synthetic, no anomaly)."
    ]
    return rows, notes


def scale_case(epochs: int = 3) -> None:
    """k = 200 channels, 100,000 rows; prints one JSON line (runs in its own process)."""
    from sparse_lstm_ad.config import Config, DataConfig, TrainConfig
    from sparse_lstm_ad.data import fit_standardizer, make_windows
    from sparse_lstm_ad.models import build_model
    from sparse_lstm_ad.pipeline import Rows, score_parts
    from sparse_lstm_ad.training import fit_autoencoder, make_repeatable

    cfg = Config(data=DataConfig(name="scale"), train=TrainConfig(epochs=epochs))
    make_repeatable(0, True)
    rng = np.random.default_rng(0)
    n, k = 100_000, 200
    t = np.arange(n)[:, None]
    series = np.sin(t / rng.uniform(200, 2000, k)) + rng.normal(0, 0.3, (n, k))
    channels = [f"c{i}" for i in range(k)]
    standardizer = fit_standardizer(series[:80_000], channels)
    scaled = standardizer.transform(series)
    rows = Rows(
        scaled[:72_000], scaled[72_000:80_000], scaled[80_000:], None, channels, standardizer
    )
    del series, scaled
    windows = {p: make_windows(getattr(rows, p), cfg.data.window) for p in ("train", "val", "test")}
    model = build_model(cfg.model, cfg.data.window, k)
    started = time.perf_counter()
    fit = fit_autoencoder(model, windows["train"], windows["val"], cfg.train)
    fit_seconds, rss_fit = time.perf_counter() - started, peak_rss_mb()
    started = time.perf_counter()
    score_parts(model, cfg, rows, windows)
    figures = {
        "epochs": fit.epochs_run,
        "fit": fit_seconds,
        "rss_fit": rss_fit,
        "score": time.perf_counter() - started,
        "rss_score": peak_rss_mb(),
        "train_windows": len(windows["train"]),
        "epoch_seconds": fit.history["epoch_seconds"],
    }
    print(json.dumps(figures))


# --- the report -------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores (nproc), {cpu}, {memory:.0f} GiB"


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:.4g} {unit}" if unit != "x" else f"{value:.1f}x"


def table(rows: list[Row]) -> str:
    lines = ["| what | reference | ours | reference / ours | target |", "|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row.ratio:.1f}x" if row.ratio is not None else ""
        lines.append(
            f"| {row.what} | {_cell(row.reference, row.unit)} | {_cell(row.ours, row.unit)} "
            f"| {ratio} | {row.target} |"
        )
    return "\n".join(lines)


def main(quick: bool) -> None:
    global EPOCHS
    if quick:
        EPOCHS = 4
    print("# Benchmark: our pipeline vs a naive seed-notebook pipeline\n")
    print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"- machine: {machine()}; Python {platform.python_version()}")
    print(
        f"- command: `.venv/bin/python experiments/benchmark/run.py{' --quick' if quick else ''}`"
    )
    print("- data: seed case 2 (15,000 x 5); standard model, hidden 5, window 15, batch 128\n")
    import tensorflow as tf  # noqa: F401  # loaded before any timing, for both pipelines

    frame = reference.seed_case2()
    rows = windowing_rows(frame) + scoring_rows()
    same = (reference.run_reference(frame, EPOCHS, EPOCHS), run_ours(EPOCHS, EPOCHS))
    stopped = (reference.run_reference(frame, EPOCHS, PATIENCE), run_ours(EPOCHS, PATIENCE))
    pipeline, notes = pipeline_rows(same, stopped)
    floor_rows, floor_text, floor = floor_notes(statistics.median(same[1]["epoch_seconds"][1:]))
    rows += [*pipeline, *floor_rows]
    rows.append(Row("peak RSS of this process (both pipelines)", None, peak_rss_mb(), unit="MB"))
    sections = (lambda: epoch_rows(floor), startup_rows, cli_rows, sweep_rows, scale_rows)
    for section in sections:
        more, text = section()
        rows += more
        notes += text
    print(table(rows))
    print()
    print("\n".join(notes + floor_text))


if __name__ == "__main__":
    if "--scale" in sys.argv:
        scale_case()
    elif "--epoch-batch" in sys.argv:
        epoch_case(int(sys.argv[sys.argv.index("--epoch-batch") + 1]))
    else:
        main(quick="--quick" in sys.argv)
