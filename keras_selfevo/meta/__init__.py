"""Meta-learning: the MAML family as a keras.Model.

``MetaLearner`` runs maml, fomaml, metasgd, anil and reptile on any built Keras model.
(``kse.adapt``, which fits a language model of the zoo to a new text, lives with the
language models in :mod:`keras_selfevo.zoo.adaptation`.)
"""

from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner

__all__ = ["ALGORITHMS", "MetaLearner"]
