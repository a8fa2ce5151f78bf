"""tabular: an MLP over a table's raw columns with a masked-feature self task."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import checks as _checks
from keras_selfevo.data.table import input_name
from keras_selfevo.layers import RandomMasking
from keras_selfevo.training.self_evolving_model import FunctionalSelfEvolvingModel
from keras_selfevo.zoo.seeding import seeded

TASKS = ("classification", "regression")


@keras.saving.register_keras_serializable(package="keras_selfevo")
class TabularModel(FunctionalSelfEvolvingModel):
    """The ``tabular`` zoo model (see :func:`tabular`); its self-loss is the squared error."""

    default_alpha = 0.2
    default_self_loss = "mean_squared_error"

    @property
    def default_reinforce_loss(self) -> str:
        """The log-likelihood of the labels (classification) or the squared error."""
        regression = isinstance(self.get_layer("policy"), keras.layers.Rescaling)
        return "squared" if regression else "log_likelihood"

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict``; a dict of NumPy columns may hold strings (categories)."""
        if isinstance(x, dict):
            x = {key: tf.constant(value) if isinstance(value, np.ndarray)
                 and value.dtype.kind in "OUS" else value for key, value in x.items()}
        return super().predict(x, *args, **kwargs)


def tabular(numeric: list[str] | None = None, means: list[float] | None = None,
            variances: list[float] | None = None,
            categorical: dict[str, list[str]] | None = None, task: str = "classification",
            num_classes: int = 2, label_mean: float = 0.0, label_std: float = 1.0,
            units: list[int] | tuple[int, ...] = (64, 64), mask_rate: float = 0.3,
            seed: int | None = None) -> TabularModel:
    """A self-evolving MLP that reads a table's raw rows.

    Inputs are the columns by name (:func:`keras_selfevo.data.table.input_name`): numbers
    ``[batch, 1]`` standardised inside the model with the training split's ``means`` and
    ``variances``, categories (strings) one-hot encoded from their known values (an unseen
    value is "other"). The features go through shared dense layers twice: clean, to the
    ``"policy"`` head (class probabilities, or the regression value in the label's units);
    with ``mask_rate`` of them masked, to the ``"self"`` head, which reconstructs the
    standardised features (``"self_target"``, held constant; ``"mask"`` marks the masked
    ones: compile with ``masked_self_loss=True``). Save the model and it keeps every
    statistic: ``predict`` and an export take raw rows.

    Args:
        numeric: Numeric column names.
        means: Their training means.
        variances: Their training variances.
        categorical: Categorical column names and their known values.
        task: ``"classification"`` or ``"regression"``.
        num_classes: Classes of a classification.
        label_mean: The regression label's training mean (the output's offset).
        label_std: Its spread (the output's scale).
        units: Widths of the shared dense layers.
        mask_rate: Share of the features masked for the self task.
        seed: Seeds the initial weights and the masking.
    """
    numeric, categorical = list(numeric or []), dict(categorical or {})
    means, variances = list(means or [0.0] * len(numeric)), list(variances or [1.0] * len(numeric))
    if not numeric and not categorical:
        raise ValueError("`numeric` and `categorical` are both empty: a table needs a feature "
                         "column.")
    if len(means) != len(numeric) or len(variances) != len(numeric):
        raise ValueError(f"`means` and `variances` need one value per numeric column "
                         f"({len(numeric)}); got {len(means)} and {len(variances)}.")
    _checks.one_of(task, "task", TASKS)
    if task == "classification":
        _checks.int_at_least(num_classes, "num_classes", 2)
    _checks.positive_number(label_std, "label_std")
    seeded(seed)
    inputs: dict[str, Any] = {}
    parts = []
    if numeric:
        columns = []
        for name in numeric:
            inputs[input_name(name)] = keras.Input((1,), name=input_name(name))
            columns.append(inputs[input_name(name)])
        joined = (keras.layers.Concatenate(name="numeric")(columns) if len(columns) > 1
                  else columns[0])
        parts.append(keras.layers.Normalization(mean=means, variance=variances,
                                                name="standardize")(joined))
    for name, values in categorical.items():
        inputs[input_name(name)] = keras.Input((1,), dtype="string", name=input_name(name))
        parts.append(keras.layers.StringLookup(vocabulary=list(values), output_mode="one_hot",
                                               name=f"{input_name(name)}_one_hot")(
            inputs[input_name(name)]))
    features = keras.layers.Concatenate(name="features")(parts) if len(parts) > 1 else parts[0]
    masked, mask = RandomMasking(rate=mask_rate, seed=seed, name="masking")(features)
    layers = [keras.layers.Dense(width, activation="relu", name=f"hidden{i}")
              for i, width in enumerate(units)]

    def encode(tensor):
        for layer in layers:
            tensor = layer(tensor)
        return tensor

    if task == "classification":
        policy = keras.layers.Dense(num_classes, activation="softmax",
                                    name="policy")(encode(features))
    else:
        value = keras.layers.Dense(1, name="standardized_value")(encode(features))
        policy = keras.layers.Rescaling(label_std, offset=label_mean, name="policy")(value)
    outputs = {
        "self": keras.layers.Dense(features.shape[-1], name="self")(encode(masked)),
        "self_target": keras.layers.Identity(name="self_target")(features),
        "mask": mask,
        "policy": policy,
    }
    return TabularModel(inputs, outputs, name="tabular")


def tabular_arguments(info: dict[str, Any]) -> dict[str, Any]:
    """The :func:`tabular` builder's arguments a table's ``info`` fixes."""
    arguments = {"numeric": info["numeric"], "means": info["means"],
                 "variances": info["variances"], "categorical": info["categorical"],
                 "task": info["task"]}
    if info["task"] == "classification":
        arguments["num_classes"] = info["num_classes"]
    else:
        arguments.update(label_mean=info["label_mean"], label_std=info["label_std"])
    return arguments


# What the model reads from your own files (`keras-selfevo ... --data PATH`).
tabular.data_kind = "table"
