"""Losses of the combined objective and the reward weightings ``w(r)``.

``SelfSupervisedLoss`` and ``RewardWeightedSquaredLoss`` are public, stand-alone Keras losses
(use them with any ``keras.Model.compile``). ``SelfEvolvingModel`` resolves its two terms once
at ``compile``: the self-loss kind (:func:`get_self_loss`: binary cross-entropy or the
next-token log-likelihood) and the reinforce-loss kind (:func:`get_reinforce_loss`), which
share the element functions and weightings with the stand-alone losses, so the maths has one
definition; the model does its own reduction because it normalises by the global batch and
counts masks across replicas.
"""

from keras_selfevo.losses.reinforce_loss import (
    REINFORCE_LOSSES,
    LogLikelihoodReinforceLoss,
    ReinforceLoss,
    SquaredReinforceLoss,
    get_reinforce_loss,
)
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
from keras_selfevo.losses.self_loss import (
    SELF_LOSSES,
    BinaryCrossentropySelfLoss,
    NextTokenSelfLoss,
    SelfLoss,
    SquaredErrorSelfLoss,
    binary_crossentropy_elements,
    get_self_loss,
    sparse_categorical_elements,
)
from keras_selfevo.losses.self_supervised_loss import SelfSupervisedLoss

__all__ = [
    "AWRWeighting",
    "BinaryCrossentropySelfLoss",
    "CallableWeighting",
    "FilterWeighting",
    "GroupRelativeWeighting",
    "LogLikelihoodReinforceLoss",
    "NextTokenSelfLoss",
    "NormalizedWeighting",
    "REINFORCE_LOSSES",
    "RawWeighting",
    "ReinforceLoss",
    "RewardWeightedSquaredLoss",
    "RewardWeighting",
    "SELF_LOSSES",
    "SelfLoss",
    "SelfSupervisedLoss",
    "SquaredErrorSelfLoss",
    "SquaredReinforceLoss",
    "WEIGHTINGS",
    "binary_crossentropy_elements",
    "get_reinforce_loss",
    "get_reward_weighting",
    "get_self_loss",
    "sparse_categorical_elements",
    "squared_error_per_sample",
]
