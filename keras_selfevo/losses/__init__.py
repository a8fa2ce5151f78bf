"""Losses of the combined objective and the reward weightings ``w(r)``.

``SelfSupervisedLoss`` and ``RewardWeightedSquaredLoss`` are public, stand-alone Keras losses
(use them with any ``keras.Model.compile``). ``SelfEvolvingModel`` computes its two terms
from the same element functions (``binary_crossentropy_elements``,
``squared_error_per_sample``) and the same weightings, so the maths has one definition; it
does its own reduction because it normalises by the global batch and counts masks across
replicas.
"""

from keras_selfevo.losses.reward_weighted_squared_loss import (
    RewardWeightedSquaredLoss,
    squared_error_per_sample,
)
from keras_selfevo.losses.reward_weighting import (
    WEIGHTINGS,
    AWRWeighting,
    CallableWeighting,
    FilterWeighting,
    GroupRelativeWeighting,
    NormalizedWeighting,
    RawWeighting,
    RewardWeighting,
    get_reward_weighting,
)
from keras_selfevo.losses.self_supervised_loss import (
    SELF_LOSSES,
    SelfSupervisedLoss,
    binary_crossentropy_elements,
    sparse_categorical_elements,
)

__all__ = [
    "AWRWeighting",
    "CallableWeighting",
    "FilterWeighting",
    "GroupRelativeWeighting",
    "NormalizedWeighting",
    "RawWeighting",
    "RewardWeightedSquaredLoss",
    "RewardWeighting",
    "SELF_LOSSES",
    "SelfSupervisedLoss",
    "WEIGHTINGS",
    "binary_crossentropy_elements",
    "get_reward_weighting",
    "sparse_categorical_elements",
    "squared_error_per_sample",
]
