import numpy as np
import tensorflow as tf
from sklearn.datasets import load_digits

import keras_selfevo as kse


def test_digits_are_sklearns_in_a_centred_box_with_fixed_disjoint_splits(tmp_path):
    splits = {name: kse.data.load("selfevo_digits", split=name, data_dir=str(tmp_path),
                                  batch_size=-1) for name in ("train", "test")}
    reference = load_digits()
    index = {name: split["index"].numpy() for name, split in splits.items()}
    assert len(index["train"]) == 1442 and len(index["test"]) == 355
    assert not set(index["train"]) & set(index["test"])
    assert sorted(np.concatenate(list(index.values()))) == list(range(len(reference.target)))
    for split in splits.values():
        np.testing.assert_array_equal(split["label"].numpy(),
                                      reference.target[split["index"].numpy()])
        images = split["image"].numpy()
        assert images.shape[1:] == (28, 28, 1) and images.dtype == np.uint8
        # Ink only inside the centred 20x20 box; shrunk back to 8x8, it is the original.
        assert images[:, :4].max() == 0 and images[:, 24:].max() == 0
        assert images[:, :, :4].max() == 0 and images[:, :, 24:].max() == 0
        box = images[:, 4:24, 4:24].astype(np.float32)
        shrunk = tf.image.resize(box, (8, 8), method="area").numpy()[..., 0]
        original = reference.images[split["index"].numpy()] * (255 / 16)
        for got, expected in zip(shrunk, original):
            assert np.corrcoef(got.ravel(), expected.ravel())[0, 1] > 0.9
    # Every fifth image of each class in scikit-learn's order is a test image.
    for label in range(10):
        members = np.flatnonzero(reference.target == label)
        assert set(members[4::5]) == set(index["test"][splits["test"]["label"].numpy() == label])
