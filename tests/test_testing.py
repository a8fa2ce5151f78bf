"""The shared helper itself: it passes good layers and models and catches broken ones."""

import keras
import numpy as np
import pytest

from keras_selfevo import testing


@keras.saving.register_keras_serializable(package="kse_tests")
class Scale(keras.layers.Layer):
    """Multiplies by a trainable per-feature scale, initialised to ``init``."""

    def __init__(self, init=2.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.scale = self.add_weight(
            shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.init)
        )

    def call(self, x):
        return x * self.scale

    def get_config(self):
        return {**super().get_config(), "init": self.init}


@keras.saving.register_keras_serializable(package="kse_tests")
class ForgetfulScale(Scale):
    """Broken on purpose: its config drops ``init``."""

    def get_config(self):
        config = super().get_config()
        del config["init"]
        return config


@keras.saving.register_keras_serializable(package="kse_tests")
class NotRebuiltOnLoad(Scale):
    """Broken on purpose: the loaded layer differs from the saved one (weights ignored)."""

    def load_own_variables(self, store):
        pass


def _inputs():
    return np.random.default_rng(0).normal(size=(4, 3)).astype("float32")


def test_layer_test_passes_a_good_layer_with_fresh_process_reload():
    layer = testing.run_layer_test(
        Scale, {"init": 3.0}, _inputs(), expected_output_shape=(4, 3),
        expected_num_trainable_weights=1,
    )
    assert layer.get_config()["init"] == 3.0


def test_model_saving_test_on_a_small_model_in_a_fresh_process(tmp_path):
    inputs = keras.Input((3,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    model = keras.Model(inputs, {"a": Scale(0.5)(hidden), "b": keras.layers.Dense(2)(hidden)})
    loaded = testing.run_model_saving_test(
        model, _inputs(), {"a": (None, 8), "b": (None, 2)}, tmp_dir=str(tmp_path)
    )
    assert (tmp_path / "model.keras").exists()
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])


def test_fresh_process_reload_reports_class_and_outputs_of_each_model_in_order(tmp_path):
    sequential = keras.Sequential([keras.Input((3,)), Scale(1.5)])
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, [Scale(-2.0)(inputs), keras.layers.Dense(2)(inputs)])
    paths = [str(tmp_path / "a.keras"), str(tmp_path / "b.keras")]
    sequential.save(paths[0])
    functional.save(paths[1])
    doubled = _inputs() * 2
    (first, first_outputs), (second, second_outputs) = testing.reload_many_in_fresh_process(
        [(paths[0], _inputs()), (paths[1], doubled)], [__name__])
    assert first == "keras.src.models.sequential.Sequential"
    assert second == "keras.src.models.functional.Functional"
    np.testing.assert_allclose(first_outputs[0], _inputs() * 1.5, rtol=1e-6)
    assert len(second_outputs) == 2
    np.testing.assert_allclose(second_outputs[0], doubled * -2.0, rtol=1e-6)
    np.testing.assert_allclose(second_outputs[1], functional(doubled)[1], rtol=1e-6)
    with pytest.raises(ValueError, match="`models` must hold at least one"):
        testing.reload_many_in_fresh_process([])
    with pytest.raises(ValueError, match="`models` names .keras files that do not exist"):
        testing.reload_many_in_fresh_process([(paths[0], _inputs()),
                                              (str(tmp_path / "no.keras"), _inputs())])


def test_layer_test_catches_a_missing_config_argument():
    with pytest.raises(AssertionError, match="lacks argument 'init'"):
        testing.run_layer_test(ForgetfulScale, {"init": 3.0}, _inputs(), fresh_process=False)


def test_layer_test_catches_wrong_output_shape():
    with pytest.raises(AssertionError, match="Output shapes"):
        testing.run_layer_test(
            Scale, {"init": 3.0}, _inputs(), expected_output_shape=(4, 5), fresh_process=False
        )


def test_model_saving_test_catches_outputs_that_change_on_reload():
    layer = NotRebuiltOnLoad(1.0)
    model = keras.Sequential([keras.Input((3,)), layer])
    layer.scale.assign([5.0, 6.0, 7.0])
    with pytest.raises(AssertionError, match="Reload"):
        testing.run_model_saving_test(model, _inputs(), fresh_process=False)


def test_fresh_reload_test_names_the_model_whose_outputs_change():
    good = keras.Sequential([keras.Input((3,)), Scale(1.5)], name="good")
    layer = NotRebuiltOnLoad(1.0)
    bad = keras.Sequential([keras.Input((3,)), layer], name="forgets_its_weights")
    layer.scale.assign([5.0, 6.0, 7.0])
    with pytest.raises(AssertionError, match="Fresh-process reload of forgets_its_weights"):
        testing.run_fresh_reload_test([(good, _inputs()), (bad, _inputs())],
                                      modules=[__name__])
