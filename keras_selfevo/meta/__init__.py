"""Meta-learning: the MAML family as a keras.Model, and ``adapt`` for language models.

``MetaLearner`` runs maml, fomaml, metasgd, anil and reptile; ``adapt`` fits a language
model of the zoo (meta-learned or not) to a new text in a few steps.
"""

from keras_selfevo.meta.adaptation import Adaptation, adapt
from keras_selfevo.meta.meta_learner import ALGORITHMS, MetaLearner

__all__ = ["ALGORITHMS", "Adaptation", "MetaLearner", "adapt"]
