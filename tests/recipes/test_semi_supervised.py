"""Few labels in one ``fit``: the labeled subset, mixed batches, and the recipe's checks."""

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo.recipes import data
from keras_selfevo.recipes import train as recipes

ROOT = pathlib.Path(__file__).resolve().parents[2]
TINY = {
    "name": "tiny", "model": "mnist_cnn",
    "model_args": {"filters": 4, "units": 8, "decoder": "conv", "policy_input": "clean"},
    "dataset": "selfevo_glyphs/small", "validation_split": None, "epochs": 2,
    "batch_size": 40, "alpha": 0.5, "masked_self_loss": True, "labeled_fraction": 0.1,
    "labeled_per_batch": 8,
}



def test_labeled_subset_is_stratified_seeded_and_keeps_one_per_class():
    labels = np.repeat(np.arange(4), [50, 30, 10, 3])
    chosen = data.labeled_subset(labels, 0.1, seed=3)
    np.testing.assert_array_equal(np.bincount(labels[chosen]), [5, 3, 1, 1])
    np.testing.assert_array_equal(chosen, data.labeled_subset(labels, 0.1, seed=3))
    assert not np.array_equal(chosen, data.labeled_subset(labels, 0.1, seed=4))
    assert np.all(np.diff(chosen) > 0)
    np.testing.assert_array_equal(data.labeled_subset(labels, 1.0, seed=0), np.arange(93))
    with pytest.raises(ValueError, match="`fraction` must be a number in"):
        data.labeled_subset(labels, 0.0, seed=0)


def _index_arrays(size=50, labeled=(3, 7, 11, 20, 41)):
    flags = np.zeros(size, bool)
    flags[list(labeled)] = True
    return {"x": np.arange(size), "labeled": flags}


def _batches(arrays, per_batch, batch_size, first, epochs):
    dataset, steps = data.mixed_epoch_dataset(arrays, per_batch, batch_size, seed=5,
                                              first_epoch=first, epochs=epochs,
                                              to_model=lambda batch: batch)
    return [batch for batch in dataset.as_numpy_iterator()], steps


def test_mixed_batches_hold_the_labeled_count_and_pass_once_over_the_unlabeled():
    arrays = _index_arrays()
    batches, steps = _batches(arrays, 2, 8, 0, 3)
    assert steps == 45 // 6 and len(batches) == 3 * steps
    for epoch in range(3):
        seen = []
        for batch in batches[epoch * steps:(epoch + 1) * steps]:
            assert batch["labeled"].tolist() == [True] * 2 + [False] * 6
            seen += batch["x"][2:].tolist()
        assert len(set(seen)) == len(seen) == steps * 6  # no unlabeled image twice an epoch
    # The labeled images cycle: every one of the 5 appears within each window of 5 draws.
    drawn = np.concatenate([b["x"][:2] for b in batches])
    for start in range(0, 10, 5):
        assert sorted(drawn[start:start + 5]) == [3, 7, 11, 20, 41]
    # Epoch 2 is the same whether training started at 0 or resumed at 2.
    resumed, _ = _batches(arrays, 2, 8, 2, 3)
    for a, b in zip(batches[2 * steps:], resumed):
        np.testing.assert_array_equal(a["x"], b["x"])


def test_unlabeled_images_carry_no_label_and_no_reward():
    to_model = data.to_model_inputs({"dataset": "selfevo_glyphs/small"}, {"num_classes": 3})
    batch = {"x": tf.zeros([3, 2, 2, 1], tf.uint8), "label": tf.constant([2, 1, 0]),
             "labeled": tf.constant([True, False, True])}
    _, y = to_model(batch)
    np.testing.assert_array_equal(y["reward"], [1.0, 0.0, 1.0])
    np.testing.assert_array_equal(y["policy"], [[0, 0, 1], [0, 0, 0], [1, 0, 0]])


def test_recipe_with_few_labels_trains_on_mixed_batches(tmp_path, glyphs_small_dir, write_recipe):
    result = recipes.train(write_recipe(TINY), str(tmp_path / "run"), data_dir=glyphs_small_dir,
                           verbose=0)
    # 400 training images, 40 labeled: 360 unlabeled in batches of 32 → 11 steps an epoch.
    assert len(result["history"]["loss"]) == 2
    assert np.all(np.isfinite(result["history"]["reinforce_loss"]))
    with open(tmp_path / "run" / "history.json") as handle:
        assert json.load(handle)["config"]["labeled_fraction"] == 0.1


@pytest.mark.parametrize("changes, message", [
    ({"labeled_fraction": 1.5}, "`labeled_fraction` must be a number in"),
    ({"labeled_fraction": None}, "`labeled_per_batch` needs `labeled_fraction`"),
    ({"reward_weighting": "awr"}, "`labeled_fraction` needs `reward_weighting`='raw'"),
    ({"labeled_per_batch": 40}, "`labeled_per_batch`=40 must be less than `batch_size`=40"),
])
def test_bad_few_label_settings_name_the_key(tmp_path, glyphs_small_dir, changes, message,
                                             write_recipe):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        recipes.train(write_recipe(TINY, **changes), str(out), data_dir=glyphs_small_dir,
                      verbose=0)
    assert not out.exists()


def test_the_shipped_recipe_trains_on_a_subset_of_the_real_digits(tmp_path):
    recipe = str(ROOT / "models" / "semi_supervised_digits")
    settings = {"max_train_examples": 300, "labeled_fraction": 0.1}
    result = recipes.train(recipe, str(tmp_path / "run"), epochs=1, data_dir=str(tmp_path),
                           overrides=settings, verbose=0)
    config = recipes.load_train_recipe(recipe, {"data_dir": str(tmp_path), "epochs": 1,
                                                **settings})
    train_arrays = data.read_data(config)[0]
    assert 25 <= train_arrays["labeled"].sum() <= 35
    steps = int((~train_arrays["labeled"]).sum()) // 48  # 48 unlabeled images a batch
    # alpha's cosine from 0 to 0.5 over `steps` steps has the mean 0.25 (1 - 1 / steps): the
    # epoch took exactly one pass over the unlabeled images.
    np.testing.assert_allclose(result["history"]["alpha"], [0.25 * (1 - 1 / steps)],
                               rtol=1e-5)
    # One epoch with 30 labels: well above chance (0.1) already.
    assert result["history"]["val_categorical_accuracy"][0] > 0.25


def test_the_compiled_metrics_count_the_labeled_rows_only():
    import keras

    import keras_selfevo as kse

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = kse.SelfEvolvingModel(inputs, {
        "self": keras.layers.Dense(4, activation="sigmoid")(inputs),
        "policy": keras.layers.Dense(3, activation="softmax")(inputs)})
    model.compile(optimizer="adam", alpha=0.5, metrics=["categorical_accuracy"])
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(40, 4)).astype("float32")
    labels = rng.integers(0, 3, 40)
    labeled = np.arange(40) % 4 == 0
    policy = np.eye(3, dtype="float32")[labels] * labeled[:, None]
    logs = model.evaluate(x, {"policy": policy, "reward": labeled.astype("float32")},
                          batch_size=40, verbose=0, return_dict=True)
    predicted = model.predict(x, verbose=0)["policy"].argmax(-1)
    expected = np.mean(predicted[labeled] == labels[labeled])
    assert expected != np.mean(np.where(labeled, predicted == labels, predicted == 0))
    np.testing.assert_allclose(logs["categorical_accuracy"], expected, rtol=1e-6)
