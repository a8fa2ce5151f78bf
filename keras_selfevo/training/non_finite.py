"""Stopping ``fit`` when a step's loss or the weights are no longer finite."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import tensorflow as tf


def weights_are_finite(variables: list) -> tf.Tensor:
    """Whether every value of ``variables`` is finite, as one scalar boolean.

    Reads the variables' current values (after the update, in a step). One sum per
    variable instead of an element-wise test: NaN and infinity survive a sum, and a sum
    that overflows float32 comes from weights that have diverged anyway.
    """
    sums = [tf.reduce_sum(tf.cast(v, tf.float32)) for v in variables]
    return tf.math.is_finite(tf.add_n(sums)) if sums else tf.constant(True)


def loss_for_logs(loss: tf.Tensor, weights_finite: tf.Tensor) -> tf.Tensor:
    """``loss``, or NaN when the step's update left non-finite weights (fit then stops)."""
    return tf.where(weights_finite, loss, tf.constant(float("nan"), loss.dtype))


class NonFiniteWeightsError(RuntimeError):
    """An update left NaN or infinite values in the weights; training was stopped."""


class StopOnNonFinite(keras.callbacks.Callback):
    """After a step with a non-finite loss: stop, and say whether the weights survived.

    The package's steps log a NaN loss both when the batch's loss is not finite and when
    their update left a non-finite weight (:func:`loss_for_logs`). The first case comes
    from the batch (the step applied no gradient, so the weights are intact: ``fit`` stops
    with a warning); the second from a diverging update (a learning rate or optimizer
    setting): then :class:`NonFiniteWeightsError` is raised at that very step, before any
    later callback of the batch or the epoch's end, so ``ModelCheckpoint`` and
    ``BackupAndRestore`` never save those weights: the checkpoint on disk is the last good
    one. Put it first in the callback list (the package's ``fit`` does).

    Args:
        skipped_update: The model's step skips non-finite updates (SelfEvolvingModel's does).
    """

    def __init__(self, skipped_update: bool = True):
        super().__init__()
        self.skipped_update = skipped_update
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        self.model.stop_training = True
        where = f"epoch {self._epoch + 1}, batch {batch + 1}"
        if not all(np.all(np.isfinite(w)) for w in self.model.get_weights()):
            raise NonFiniteWeightsError(
                f"{type(self.model).__name__}: the update at {where} (or, with "
                "steps_per_execution > 1, one of the steps before it) left NaN or infinite "
                "weights: it diverged (check the learning rate and the optimizer's "
                "settings). Training stopped; checkpoints saved before it are intact.")
        terms = [key for key in ("self_loss", "reinforce_loss") if key in logs]
        details = ", ".join(f"{key}={float(logs[key]):.4g}" for key in terms)
        applied = ("Its gradient was not applied and training stopped; no weight holds a NaN."
                   if self.skipped_update else "Training stopped; the weights are finite.")
        warnings.warn(f"{type(self.model).__name__}: non-finite loss at {where} (epoch means "
                      f"so far: {details}). {applied}", RuntimeWarning, stacklevel=2)
