"""Every private Keras piece the package touches still exists (a Keras upgrade fails here).

The pieces are used through ``keras_selfevo._internal.keras_internals`` only; each check
names the piece that is gone.
"""

import ast
import inspect
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo._internal import keras_internals

PACKAGE = pathlib.Path(keras_internals.__file__).parents[1]


def _model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, {"out": keras.layers.Dense(2, name="dense")(inputs)})


def test_the_written_for_version_is_the_installed_one():
    installed = ".".join(keras.__version__.split(".")[:2])
    assert installed == keras_internals.WRITTEN_FOR, (
        f"Keras {keras.__version__} is installed; keras_internals was written for "
        f"{keras_internals.WRITTEN_FOR}: read the module and its test, then update WRITTEN_FOR.")


@pytest.mark.parametrize("owner, name", [
    (keras.Model, "_maybe_symbolic_build"),
    (keras.Model, "_symbolic_build"),
    (keras.layers.Layer, "_flatten_layers"),
])
def test_private_methods_exist(owner, name):
    assert callable(getattr(owner, name, None)), f"{owner.__name__}.{name} is gone"


def test_maybe_symbolic_build_takes_an_iterator_and_a_batch():
    parameters = inspect.signature(keras.Model._maybe_symbolic_build).parameters
    assert {"iterator", "data_batch"} <= set(parameters)


def test_compile_state_and_outputs_structure():
    model = _model()
    assert keras_internals.declared_outputs(model).keys() == {"out"}
    column = keras.Input((1,), name="a")
    named = keras.Model({"a": column}, keras.layers.Dense(1)(column))
    assert isinstance(keras_internals.declared_inputs(named), dict)
    model.compile(optimizer="sgd", loss="mse")
    config = keras_internals.compile_config(model)
    assert config["loss"] == "mse"
    keras_internals.set_compile_config(model, {**config, "loss": "mae"})
    assert model.get_compile_config()["loss"] == "mae"
    assert isinstance(keras_internals.loss_tracker(model), keras.metrics.Mean)
    assert [layer.name for layer in keras_internals.sublayers(model)][-1] == "dense"


def test_functional_construction_without_the_class_rewrite():
    assert keras_internals.functional_init_arguments((keras.Input((1,)), None), {})
    assert issubclass(keras_internals.Functional, keras.Model)
    trainer = keras.Model.__bases__[0]
    assert trainer.__module__.startswith("keras.src.backend.tensorflow"), trainer
    assert callable(keras_internals.no_automatic_dependency_tracking)


def test_the_epoch_iterator_exposes_its_data_adapter():
    from keras.src.trainers.epoch_iterator import EpochIterator

    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((4, 3)), np.zeros((4, 2)))).batch(2)
    spec = keras_internals.FirstTraceHooks.data_structure(EpochIterator(x=dataset))
    assert spec == dataset.element_spec


def test_first_trace_hooks_override_keras_and_build_state():
    class Hooked(keras_internals.FirstTraceHooks, keras.Model):
        pass

    inputs = keras.Input((3,))
    model = Hooked(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer="adam", loss="mse")
    assert model.explicit_strategy is None
    model.fit(np.zeros((4, 3)), np.zeros((4, 2)), verbose=0)
    assert model.optimizer.built


def test_exact_moments_patches_the_backend_and_restores_it():
    from keras.src.backend.tensorflow import nn as backend_nn

    original = backend_nn._compute_moments
    x = tf.constant([[1.0, 2.0, 4.0]])
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            with keras_internals.exact_moments():
                assert backend_nn._compute_moments is not original
                _, variance = keras.ops.moments(x, axes=[1])
        first = inner.gradient(variance, x)[0, 0]
    hessian_row = outer.gradient(first, x).numpy()
    # d/dx_j of 2 (x_0 - mean) / n: exact second derivative (2/n)(delta_0j - 1/n).
    np.testing.assert_allclose(hessian_row, [[4 / 9, -2 / 9, -2 / 9]], rtol=1e-6)
    assert backend_nn._compute_moments is original


def _imported_modules(path: pathlib.Path) -> set[str]:
    """The modules a file imports (``from a import b`` counts as ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_keras_src_import_outside_the_one_module():
    offenders = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                 if path.name != "keras_internals.py"
                 and any(name.startswith("keras.src") for name in _imported_modules(path))]
    assert not offenders, offenders


def test_no_zoo_import_under_meta_or_evolve():
    offenders = [str(path.relative_to(PACKAGE)) for folder in ("meta", "evolve")
                 for path in (PACKAGE / folder).rglob("*.py")
                 if any(name.startswith("keras_selfevo.zoo")
                        for name in _imported_modules(path))]
    assert not offenders, offenders
