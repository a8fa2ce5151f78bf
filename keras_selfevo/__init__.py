"""keras-selfevo: Keras 3 models that improve themselves.

Importing the package registers its Keras objects with ``keras.saving`` and its dataset
builders with TFDS, so ``keras.saving.load_model`` and ``tfds.load`` find them.
"""

from keras_selfevo._internal import quiet as _quiet

if _quiet.quiet_requested():
    _quiet.start_quietly()

from keras_selfevo import (  # noqa: E402
    data,
    distribute,
    evolve,
    export,
    layers,
    losses,
    meta,
    recipes,
    testing,
    training,
    zoo,
)
from keras_selfevo.meta import MetaLearner  # noqa: E402
from keras_selfevo.training import SelfEvolvingModel  # noqa: E402
from keras_selfevo.version import __version__  # noqa: E402
from keras_selfevo.zoo.adaptation import adapt  # noqa: E402

__all__ = [
    "MetaLearner",
    "SelfEvolvingModel",
    "__version__",
    "adapt",
    "data",
    "distribute",
    "evolve",
    "export",
    "layers",
    "losses",
    "meta",
    "recipes",
    "testing",
    "training",
    "zoo",
]
