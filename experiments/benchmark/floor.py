"""The FLOP floor of an epoch: its arithmetic against this machine's matmul rates."""

from __future__ import annotations

import numpy as np
from common import Row, best_time


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
