"""Meta-learning: the MAML family (maml, fomaml, metasgd, anil, reptile) as a keras.Model."""

from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner

__all__ = ["ALGORITHMS", "MetaLearner"]
