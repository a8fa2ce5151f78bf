"""Checks that every layer and model of the package (and of its users) must pass.

``run_layer_test`` and ``run_model_saving_test`` check: the ``get_config`` /
``from_config`` round trip, output shapes, ``.keras`` save → load in this process **and
in a fresh Python process** with identical outputs, and a forward pass under
``jit_compile=True``. They raise ``AssertionError`` with a message on any failure and do
not depend on pytest.

The fresh-process check runs ``python -m keras_selfevo.testing SPEC`` (a JSON file naming
the ``.keras`` files, their inputs and where to write the outputs) with this process's
``sys.path``, importing the modules that define the model's classes
so their ``register_keras_serializable`` registrations happen there too.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_selfevo._internal import keras_internals
from keras_selfevo._internal.fresh_process import run_module

Structure = Any  # a nest (dict / list / tuple) of arrays or tensors


def _to_numpy(structure: Structure) -> Structure:
    return keras.tree.map_structure(lambda x: np.asarray(keras.ops.convert_to_numpy(x)), structure)


def _assert_outputs_equal(expected: Structure, actual: Structure, atol: float, what: str) -> None:
    expected_flat = keras.tree.flatten(_to_numpy(expected))
    actual_flat = keras.tree.flatten(_to_numpy(actual))
    if len(expected_flat) != len(actual_flat):
        raise AssertionError(
            f"{what}: {len(actual_flat)} outputs, expected {len(expected_flat)}."
        )
    for index, (want, got) in enumerate(zip(expected_flat, actual_flat)):
        np.testing.assert_allclose(
            got, want, rtol=0, atol=atol, err_msg=f"{what}: output {index} differs"
        )


def _assert_shapes(outputs: Structure, expected_output_shape: Structure) -> None:
    """Compare output shapes with a shape tuple or a nest of them (``None`` matches any)."""
    actual = [tuple(x.shape) for x in keras.tree.flatten(_to_numpy(outputs))]
    expected = []
    keras.tree.map_shape_structure(lambda s: expected.append(tuple(s)), expected_output_shape)
    matches = len(actual) == len(expected) and all(
        len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))
        for got, want in zip(actual, expected)
    )
    if not matches:
        raise AssertionError(f"Output shapes {actual} do not match expected {expected}.")


def _class_modules(model: keras.Model) -> list[str]:
    """Modules defining the model's and its layers' classes, other than Keras's own."""
    classes = {type(model)} | {type(layer) for layer in keras_internals.sublayers(model)}
    modules = {cls.__module__ for cls in classes}
    return sorted(m for m in modules if not m.startswith(("keras.", "tf_keras.", "__main__")))


def _structure_template(structure: Structure) -> Any:
    """A JSON-able copy of ``structure`` whose leaves are their flat indices."""
    counter = iter(range(len(keras.tree.flatten(structure))))
    return keras.tree.map_structure(lambda _: next(counter), structure)


def reload_in_fresh_process(
    path: str, inputs: Structure, modules: Iterable[str] = (), timeout: float = 300
) -> tuple[str, list[np.ndarray]]:
    """Load the ``.keras`` file at ``path`` in a new Python process and run it on ``inputs``.

    Args:
        path: A ``.keras`` file.
        inputs: The model's inputs (a nest of arrays).
        modules: Modules to import in the new process before loading (registrations).
        timeout: Seconds to wait for the process.

    Returns:
        The loaded model's class as ``module.QualName`` and its flattened outputs.
    """
    return reload_many_in_fresh_process([(path, inputs)], modules, timeout)[0]


def reload_many_in_fresh_process(
    models: Sequence[tuple[str, Structure]], modules: Iterable[str] = (), timeout: float = 300
) -> list[tuple[str, list[np.ndarray]]]:
    """Like :func:`reload_in_fresh_process` for several ``.keras`` files in one new process.

    A new Python process spends seconds importing TensorFlow; checking many models in one
    of them costs that once.

    Args:
        models: ``(path, inputs)`` pairs: a ``.keras`` file and the inputs to run it on.
        modules: Modules to import in the new process before loading (registrations).
        timeout: Seconds to wait for the process (all the models together).

    Returns:
        For each pair, in order, the loaded model's class as ``module.QualName`` and its
        flattened outputs.
    """
    models = list(models)
    if not models:
        raise ValueError("`models` must hold at least one (path, inputs) pair; got none.")
    missing = [path for path, _ in models if not os.path.isfile(path)]
    if missing:
        raise ValueError(f"`models` names .keras files that do not exist: {missing}.")
    with tempfile.TemporaryDirectory() as workdir:
        jobs = []
        for index, (path, inputs) in enumerate(models):
            inputs_path = os.path.join(workdir, f"inputs_{index}.npz")
            flat = keras.tree.flatten(_to_numpy(inputs))
            # Strings as unicode arrays: .npz files hold them without pickling.
            np.savez(inputs_path, *[a.astype(str) if a.dtype.kind == "O" else a for a in flat])
            jobs.append({"model": path, "inputs": inputs_path,
                         "outputs": os.path.join(workdir, f"outputs_{index}.npz"),
                         "structure": _structure_template(inputs)})
        spec_path = os.path.join(workdir, "spec.json")
        with open(spec_path, "w") as handle:
            json.dump({"modules": list(modules), "jobs": jobs}, handle)
        names = models[0][0] if len(models) == 1 else f"{len(models)} models"
        try:
            run_module("keras_selfevo.testing", [spec_path], f"Loading {names}", timeout)
        except RuntimeError as error:
            raise AssertionError(str(error)) from None
        results = []
        for job in jobs:
            with np.load(job["outputs"]) as saved:
                outputs = [saved[f"arr_{i}"] for i in range(len(saved.files))]
            with open(job["outputs"] + ".json") as handle:
                results.append((json.load(handle)["class"], outputs))
    return results


def _fresh_process_main(argv: list[str]) -> None:
    """Entry point of the fresh process started by :func:`reload_many_in_fresh_process`."""
    import importlib

    (spec_path,) = argv
    with open(spec_path) as handle:
        spec = json.load(handle)
    for module in ["keras_selfevo", *spec["modules"]]:
        importlib.import_module(module)
    for job in spec["jobs"]:
        with np.load(job["inputs"]) as saved:
            flat = [tf.constant(saved[f"arr_{i}"]) for i in range(len(saved.files))]
        inputs = keras.tree.map_structure(flat.__getitem__, job["structure"])
        model = keras.saving.load_model(job["model"])
        outputs = keras.tree.flatten(_to_numpy(model(inputs, training=False)))
        np.savez(job["outputs"], *outputs)
        with open(job["outputs"] + ".json", "w") as handle:
            cls = type(model)
            json.dump({"class": f"{cls.__module__}.{cls.__qualname__}"}, handle)


def _assert_fresh_reload(model: keras.Model, expected: Structure, class_name: str,
                         outputs: list[np.ndarray], atol: float) -> None:
    """The fresh process loaded ``model``'s class and gave its ``expected`` outputs."""
    want = f"{type(model).__module__}.{type(model).__qualname__}"
    if class_name != want:
        raise AssertionError(f"Fresh process loaded a {class_name}, expected {want}.")
    _assert_outputs_equal(expected, outputs, atol, f"Fresh-process reload of {model.name}")


def run_fresh_reload_test(
    models: Sequence[tuple[keras.Model, Structure]],
    *,
    atol: float = 0.0,
    modules: Iterable[str] | None = None,
) -> None:
    """Save built models and reload them all in one new process: same class, same outputs.

    The fresh-process part of :func:`run_model_saving_test` for many models at the cost of
    one TensorFlow import (run that test with ``fresh_process=False`` beside it).

    Args:
        models: ``(model, inputs)`` pairs; each model has been called (built).
        atol: Allowed absolute difference of the outputs (0: identical).
        modules: Modules defining the models' custom classes; found from the classes by
            default.
    """
    models = list(models)
    if modules is None:
        modules = sorted({name for model, _ in models for name in _class_modules(model)})
    with tempfile.TemporaryDirectory() as tmp_dir:
        saved, expected = [], []
        for index, (model, inputs) in enumerate(models):
            expected.append(model(inputs, training=False))
            path = os.path.join(tmp_dir, f"model_{index}.keras")
            model.save(path)
            saved.append((path, inputs))
        reloaded = reload_many_in_fresh_process(saved, modules)
    for (model, _), want, (class_name, outputs) in zip(models, expected, reloaded):
        _assert_fresh_reload(model, want, class_name, outputs, atol)


def run_model_saving_test(
    model: keras.Model,
    input_data: Structure,
    expected_output_shape: Structure | None = None,
    *,
    fresh_process: bool = True,
    run_jit_compile: bool = True,
    atol: float = 0.0,
    jit_atol: float = 1e-5,
    modules: Iterable[str] | None = None,
    tmp_dir: str | None = None,
) -> keras.Model:
    """Check a built model's config round trip, ``.keras`` saving and XLA forward pass.

    Args:
        model: A model that has been called (built).
        input_data: Inputs to run it on.
        expected_output_shape: Expected output shape(s); ``None`` entries match anything.
        fresh_process: Also reload the ``.keras`` file in a new Python process.
        run_jit_compile: Also run the forward pass under ``tf.function(jit_compile=True)``.
        atol: Allowed absolute difference after reloading (0: identical outputs).
        jit_atol: Allowed absolute difference of the XLA forward pass.
        modules: Modules that define the model's custom classes; found automatically from
            the classes' ``__module__`` by default.
        tmp_dir: Where to write the ``.keras`` file (a new temporary directory by default).

    Returns:
        The model loaded back in this process.
    """
    expected = model(input_data, training=False)
    if expected_output_shape is not None:
        _assert_shapes(expected, expected_output_shape)

    config = model.get_config()
    revived = type(model).from_config(copy.deepcopy(config))
    if revived.get_config() != config:
        raise AssertionError(
            f"{type(model).__name__}: from_config(get_config()) changes the config:\n"
            f"{config}\n!=\n{revived.get_config()}"
        )

    own_tmp = tmp_dir is None
    tmp_dir = tempfile.mkdtemp() if own_tmp else tmp_dir
    try:
        path = os.path.join(tmp_dir, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        if type(loaded) is not type(model):
            raise AssertionError(
                f"Loaded a {type(loaded).__name__}, expected {type(model).__name__}."
            )
        _assert_outputs_equal(expected, loaded(input_data, training=False), atol, "Reload")
        if fresh_process:
            class_name, outputs = reload_in_fresh_process(
                path, input_data, _class_modules(model) if modules is None else modules
            )
            _assert_fresh_reload(model, expected, class_name, outputs, atol)
    finally:
        if own_tmp:
            shutil.rmtree(tmp_dir, ignore_errors=True)

    if run_jit_compile:
        forward = tf.function(lambda x: model(x, training=False), jit_compile=True)
        _assert_outputs_equal(expected, forward(input_data), jit_atol, "jit_compile forward")
    return loaded


def run_layer_test(
    layer_cls: type[keras.layers.Layer],
    init_kwargs: dict[str, Any],
    input_data: Structure,
    expected_output_shape: Structure | None = None,
    *,
    expected_num_trainable_weights: int | None = None,
    fresh_process: bool = True,
    run_jit_compile: bool = True,
    atol: float = 0.0,
    jit_atol: float = 1e-5,
    modules: Iterable[str] | None = None,
) -> keras.layers.Layer:
    """Check a layer class: config round trip, shapes, saving in a model, XLA.

    Every key of ``init_kwargs`` must appear in ``get_config()`` with the value given
    (after Keras serialization), ``from_config`` must rebuild an identical config, and the
    layer wrapped in a functional model must pass :func:`run_model_saving_test`.

    Args:
        layer_cls: The layer class.
        init_kwargs: Constructor arguments.
        input_data: A batch of inputs (a nest of arrays for multi-input layers).
        expected_output_shape: Expected output shape(s); ``None`` entries match anything.
        expected_num_trainable_weights: Checked when given.
        fresh_process: Also reload in a new Python process.
        run_jit_compile: Also run under ``jit_compile=True``.
        atol: Allowed absolute difference after reloading.
        jit_atol: Allowed absolute difference of the XLA forward pass.
        modules: Modules defining custom classes (found automatically by default).

    Returns:
        The layer instance that was tested.
    """
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    for key, value in init_kwargs.items():
        if key not in config:
            raise AssertionError(f"{layer_cls.__name__}.get_config() lacks argument {key!r}.")
        if keras.saving.serialize_keras_object(value) != keras.saving.serialize_keras_object(
            config[key]
        ):
            raise AssertionError(
                f"{layer_cls.__name__}.get_config()[{key!r}] = {config[key]!r}, "
                f"expected {value!r}."
            )
    revived = layer_cls.from_config(copy.deepcopy(config))
    if revived.get_config() != config:
        raise AssertionError(
            f"{layer_cls.__name__}: from_config(get_config()) changes the config:\n"
            f"{config}\n!=\n{revived.get_config()}"
        )

    symbolic = keras.tree.map_structure(
        lambda x: keras.Input(shape=tuple(x.shape[1:]), batch_size=None, dtype=x.dtype),
        _to_numpy(input_data),
    )
    model = keras.Model(symbolic, layer(symbolic))
    if expected_num_trainable_weights is not None and len(
        layer.trainable_weights
    ) != expected_num_trainable_weights:
        raise AssertionError(
            f"{layer_cls.__name__} has {len(layer.trainable_weights)} trainable weights, "
            f"expected {expected_num_trainable_weights}."
        )
    run_model_saving_test(
        model,
        input_data,
        expected_output_shape,
        fresh_process=fresh_process,
        run_jit_compile=run_jit_compile,
        atol=atol,
        jit_atol=jit_atol,
        modules=modules,
    )
    return layer


if __name__ == "__main__":
    _fresh_process_main(sys.argv[1:])
