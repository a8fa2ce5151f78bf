"""Session set-up shared by all tests.

The CPU is split into two logical devices before TensorFlow initialises, so that
``MirroredStrategy`` tests can run two replicas on a machine without GPUs. Each pytest-xdist
worker is its own process and does this once.
"""

import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Under pytest-xdist each worker gets its share of the cores for TensorFlow's intra-op pool
# (and passes it on to the notebooks and fresh processes it starts): two workers with two
# threads each on two cores spend a sixth of the suite's time contending for them.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS",
                          str(max(1, (os.cpu_count() or 1) // _workers)))

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_selfevo.zoo.language_model import LanguageModel  # noqa: E402

# Sampling compiles with XLA by default, which pays over a loop's many calls of one shape;
# a test samples a few times from a tiny model, where the compile is most of the cost. The
# suite's own processes (and the tutorials' kernels, tests/test_tutorials.py) sample in graph
# mode: tests/zoo/test_decoding.py checks that XLA draws the same tokens for every kind of
# language model, and every command the suite runs in a process of its own (CLI, README,
# demo) samples with the shipped default.
LanguageModel.sampling_jit_compile = False

# tf.data's autotuning gives every iterator a model thread, and destroying the iterator waits
# for that thread. The package's own pipelines switch it off (kse.data.pipeline.untuned); the
# others (Keras's adapters for arrays, TFDS readers, the tests' own) keep it, and their
# iterators often die in reference cycles, inside a garbage collection in a later test: there
# the wait stalled a worker for 13.5 and 31.6 s (native stacks: RootDataset::Iterator's
# destructor in ~LogicalThreadWrapper, under EagerTensor_dealloc). The suite's processes
# iterate every dataset untuned (same elements, same order; only tf.data's thread tuning off).
_apply_debug_options = tf.data.Dataset._apply_debug_options


def _untuned_iteration(dataset: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = False
    return _apply_debug_options(dataset).with_options(options)


tf.data.Dataset._apply_debug_options = _untuned_iteration

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)


@pytest.fixture(scope="session")
def two_cpus() -> list[str]:
    """Names of the two logical CPU devices."""
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, devices
    return devices


@pytest.fixture
def one_and_two_replicas(two_cpus):
    """``run(fn)``: ``fn(strategy)`` on one device, then on two replicas; both results.

    For the tests that a step on 2 logical-CPU replicas equals a step on one device.
    """
    from keras_selfevo import distribute

    def run(fn):
        mirrored = distribute.get_strategy("mirrored")
        assert mirrored.num_replicas_in_sync == 2
        return fn(distribute.get_strategy("default")), fn(mirrored)

    return run


@pytest.fixture(scope="session")
def glyphs_small_dir(tmp_path_factory) -> str:
    """A data_dir holding the prepared ``selfevo_glyphs/small`` (prepared once per worker)."""
    import tensorflow_datasets as tfds

    import keras_selfevo  # noqa: F401  (registers the builder)

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    tfds.builder("selfevo_glyphs/small", data_dir=data_dir).download_and_prepare()
    return data_dir


@pytest.fixture(scope="session")
def glyphs_full_dir(tmp_path_factory) -> str:
    """A data_dir holding the whole ``selfevo_glyphs`` build (about a minute, once per worker;
    the tests that use it share the xdist group ``glyphs_full``, so one worker builds it)."""
    import tensorflow_datasets as tfds

    import keras_selfevo  # noqa: F401  (registers the builder)

    data_dir = str(tmp_path_factory.mktemp("tfds-full"))
    tfds.builder("selfevo_glyphs", data_dir=data_dir).download_and_prepare()
    return data_dir


@pytest.fixture(scope="session")
def console_script() -> str:
    """The installed ``keras-selfevo`` script next to this interpreter."""
    path = os.path.join(os.path.dirname(sys.executable), "keras-selfevo")
    path = path if os.path.exists(path) else shutil.which("keras-selfevo")
    assert path, "the keras-selfevo console script is not installed"
    return path


def pytest_collection_modifyitems(session, config, items):
    """Run the slow tests first: with ``-n 2`` the two workers then finish close together
    (longest jobs first) instead of one worker running the last notebooks alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
