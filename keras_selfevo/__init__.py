"""keras-selfevo: Keras 3 models that improve themselves.

Importing the package registers its Keras objects with ``keras.saving`` and its dataset
builders with TFDS, so ``keras.saving.load_model`` and ``tfds.load`` find them.

The ``keras-selfevo`` command is the exception: it parses its arguments first (``--help``
and usage errors never import TensorFlow) and then calls :func:`import_all`.
"""

from keras_selfevo._internal import quiet as _quiet
from keras_selfevo.version import __version__

SUBMODULES = ("data", "distribute", "evolve", "export", "layers", "losses", "meta", "recipes",
              "testing", "training", "zoo")

__all__ = ["MetaLearner", "SelfEvolvingModel", "__version__", "adapt", "import_all",
           *SUBMODULES]


def import_all() -> None:
    """Import every submodule: registers the Keras objects and TFDS builders.

    The command line runs it after parsing, quietly unless ``--verbose`` is given.
    """
    import importlib

    if _quiet.quiet_requested():
        _quiet.start_quietly()
    for name in SUBMODULES:
        globals()[name] = importlib.import_module(f"keras_selfevo.{name}")
    from keras_selfevo.meta import MetaLearner
    from keras_selfevo.training import SelfEvolvingModel
    from keras_selfevo.zoo.adaptation import adapt

    globals().update(MetaLearner=MetaLearner, SelfEvolvingModel=SelfEvolvingModel, adapt=adapt)


def __getattr__(name: str):
    # In the command's process the submodules load on first use.
    if name in SUBMODULES or name in ("MetaLearner", "SelfEvolvingModel", "adapt"):
        import_all()
        return globals()[name]
    raise AttributeError(f"module 'keras_selfevo' has no attribute {name!r}")


if not _quiet.running_as_cli():
    import_all()
