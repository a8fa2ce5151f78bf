import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo import data


def _labeled(classes=6, per_class=4, size=4):
    """Images whose pixels encode (class, sample): image[0, 0] = class, image[0, 1] = sample."""
    images = np.zeros((classes * per_class, size, size, 1), np.uint8)
    labels = np.repeat(np.arange(classes) * 10, per_class).astype(np.int64)  # sparse labels
    for i in range(len(images)):
        images[i, 0, 0, 0] = labels[i] // 10
        images[i, 0, 1, 0] = i % per_class
        images[i, size - 1, 0, 0] = 255  # a corner mark that shows rotations
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


def _tasks(**kwargs):
    args = {"ways": 3, "shots": 1, "queries": 2, "meta_batch_size": 4, "num_meta_batches": 3}
    return list(data.episodes(_labeled(), **{**args, **kwargs}).as_numpy_iterator())


def test_shapes_labels_and_distinct_examples():
    for (sx, sy), (qx, qy) in _tasks():
        assert sx.shape == (4, 3, 4, 4, 1) and qx.shape == (4, 6, 4, 4, 1)
        assert sx.dtype == np.float32 and sy.dtype == np.int32
        for task in range(4):
            assert sy[task].tolist() == [0, 1, 2] and qy[task].tolist() == [0, 0, 1, 1, 2, 2]
            x = np.concatenate([sx[task], qx[task]]) * 255
            y = np.concatenate([sy[task], qy[task]])
            # Every new label is one original class; classes differ across labels.
            classes = {label: set(np.round(x[y == label, 0, 0, 0]).astype(int))
                       for label in range(3)}
            assert all(len(c) == 1 for c in classes.values())
            assert len({c.pop() for c in classes.values()}) == 3
            # No example appears twice in a task.
            pairs = {(round(a), round(b)) for a, b in zip(x[:, 0, 0, 0], x[:, 0, 1, 0])}
            assert len(pairs) == len(x)


def test_labels_are_remapped_at_random_and_stream_is_deterministic():
    first, again = _tasks(), _tasks()
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0][0], b[0][0])
    # Across 12 tasks, label 0 does not always name the same class.
    classes = {round(float(sx[t, 0, 0, 0, 0]) * 255) for (sx, _), _ in first for t in range(4)}
    assert len(classes) > 1
    resumed = list(data.episodes(_labeled(), 3, 1, 2, 4, num_meta_batches=1,
                                 first_meta_batch=2).as_numpy_iterator())
    np.testing.assert_array_equal(resumed[0][1][0], first[2][1][0])


def test_rotations_make_new_classes():
    seen = set()
    for (sx, _), _ in _tasks(rotations=True, ways=6, num_meta_batches=5):
        corners = sx[..., 0][..., [0, 0, -1, -1], [0, -1, 0, -1]]  # which corner holds the mark
        seen |= {int(np.argmax(c)) for c in corners.reshape(-1, 4)}
    assert len(seen) == 4  # all four rotations were drawn
    # 6 classes x 4 rotations = 24 classes: 7 ways now fit.
    assert len(_tasks(rotations=True, ways=7, num_meta_batches=1)) == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"shots": 3, "queries": 2}, "`shots` \\+ `queries` = 5 examples per class, but class 0 "
                                 "holds only 4"),
    ({"ways": 7}, "`ways`=7 is more than the 6 classes"),
    ({"ways": 0}, "`ways` must be a positive integer"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _tasks(**kwargs)
    with pytest.raises(ValueError, match="must be a tf.data.Dataset"):
        data.episodes([1, 2, 3], 2, 1, 1, 1)


def test_glyphs_tasks_train_a_meta_learner(glyphs_small_dir):
    import keras

    import keras_selfevo as kse

    labeled = data.load("selfevo_glyphs/small", split="train", data_dir=glyphs_small_dir,
                        as_supervised=True)
    tasks = data.episodes(labeled, ways=5, shots=1, queries=3, meta_batch_size=2,
                          num_meta_batches=100)
    learner = kse.MetaLearner(kse.zoo.build("conv4", num_classes=5, filters=8, seed=0),
                              inner_lr=0.4,
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    learner.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["sparse_categorical_accuracy"])
    fixed_tasks = data.episodes(labeled, ways=5, shots=1, queries=3, meta_batch_size=4, seed=9,
                                num_meta_batches=4)
    untrained = learner.evaluate(fixed_tasks, return_dict=True,
                                 verbose=0)["sparse_categorical_accuracy"]
    history = learner.fit(tasks.repeat(), steps_per_epoch=100, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    # Post-adaptation accuracy on fixed tasks: above what the untrained learner adapts to.
    after = learner.evaluate(fixed_tasks, return_dict=True,
                             verbose=0)["sparse_categorical_accuracy"]
    assert after > untrained + 0.1 and after > 0.2 + 0.15, (untrained, after)


def test_class_table_keeps_each_class_in_dataset_order_with_unequal_counts():
    from keras_selfevo.data.episodes import _by_class

    rng = np.random.default_rng(3)
    labels = rng.choice([7, 2, 9], size=23, p=[0.5, 0.3, 0.2])
    table, counts, classes = _by_class(labels, rotations=False)
    np.testing.assert_array_equal(classes, [2, 7, 9])
    for row, label in enumerate(classes):
        members = np.flatnonzero(labels == label)  # in dataset order
        assert counts[row] == len(members)
        np.testing.assert_array_equal(table[row, :len(members)], members)
    turned, turned_counts, turned_classes = _by_class(labels, rotations=True)
    np.testing.assert_array_equal(turned, np.repeat(table, 4, axis=0))
    np.testing.assert_array_equal(turned_classes, np.repeat(classes, 4))


def test_rotated_classes_are_the_images_turned_as_numpy_turns_them():
    # Class c * 4 + k is class c turned k quarter turns counter-clockwise (np.rot90).
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 5, 5, 2), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 4)
    labeled = tf.data.Dataset.from_tensor_slices((images, labels))
    (sx, sy), (qx, qy) = next(iter(data.episodes(labeled, ways=12, shots=2, queries=2,
                                                 meta_batch_size=2, rotations=True)))
    for task in range(2):
        x = np.concatenate([sx[task], qx[task]]) * 255.0
        y = np.concatenate([sy[task], qy[task]])
        drawn = set()
        for label in range(12):
            found = {(i // 4, k) for v in x[y == label] for i in range(12) for k in range(4)
                     if np.allclose(v, np.rot90(images[i], k, axes=(0, 1)), atol=1e-3)}
            assert len(found) == 1, found  # one class, one turn per label
            drawn |= found
        assert drawn == {(c, k) for c in range(3) for k in range(4)}
