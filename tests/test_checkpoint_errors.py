"""Loading checkpoints and exporting: bad files and folders are clear errors naming them."""

import zipfile

import pytest

import keras_selfevo as kse
from keras_selfevo import cli


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.keras"
    kse.zoo.build("sinusoid_mlp", seed=0).save(path)
    return path


def test_a_zip_that_is_not_a_keras_file(tmp_path, capsys):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(ValueError, match="not a Keras model file"):
        kse.zoo.load_checkpoint(str(path))
    assert cli.main(["export", str(path), str(tmp_path / "out")]) == 2
    assert "not a Keras model file" in capsys.readouterr().err


def test_a_corrupted_weights_member(tmp_path, checkpoint):
    data = bytearray(checkpoint.read_bytes())
    with zipfile.ZipFile(checkpoint) as archive:
        info = archive.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    middle = start + info.compress_size // 2
    data[middle] ^= 0xFF  # one flipped byte inside the stored weights
    broken = tmp_path / "broken.keras"
    broken.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted: its member 'model.weights.h5'"):
        kse.zoo.load_checkpoint(str(broken))


def test_export_to_a_folder_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = kse.zoo.build("sinusoid_mlp", seed=0)
    with pytest.raises(ValueError, match="`base_dir`"):
        kse.export.export_for_serving(model, str(blocker / "serving"), verify=False)
