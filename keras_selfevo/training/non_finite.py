"""Stopping ``fit`` when a step's loss or the weights are no longer finite."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np


class NonFiniteWeightsError(RuntimeError):
    """An update left NaN or infinite values in the weights; training was stopped."""


class StopOnNonFinite(keras.callbacks.Callback):
    """After a step with a non-finite loss: stop, and say whether the weights survived.

    A non-finite loss comes either from the batch (the step applied no gradient, so the
    weights are intact: ``fit`` stops with a warning) or from weights an earlier update
    made non-finite (a diverging learning rate or optimizer setting): then
    :class:`NonFiniteWeightsError` is raised at once, before the epoch ends, so callbacks
    such as ``ModelCheckpoint`` never save those weights: the checkpoint on disk is the last
    good one.

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
                f"{type(self.model).__name__}: the weights hold NaN or infinite values at "
                f"{where} (left by the previous update): an update diverged (check the "
                "learning rate and the optimizer's settings). Training stopped; checkpoints "
                "of earlier epochs are intact.")
        terms = [key for key in ("self_loss", "reinforce_loss") if key in logs]
        details = ", ".join(f"{key}={float(logs[key]):.4g}" for key in terms)
        applied = ("Its gradient was not applied and training stopped; no weight holds a NaN."
                   if self.skipped_update else "Training stopped; the weights are finite.")
        warnings.warn(f"{type(self.model).__name__}: non-finite loss at {where} (epoch means "
                      f"so far: {details}). {applied}", RuntimeWarning, stacklevel=2)
