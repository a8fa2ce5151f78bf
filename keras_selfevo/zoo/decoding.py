"""Sampling from a language model: one loop over positions, with or without a cache.

:func:`sample_loop` appends sampled tokens to a prompt in one graph (a while loop over
positions). The model decodes through two methods: ``decoding_start(tokens, start)`` gives
the logits of the token after the prompt ``tokens[:, :start]`` and a state;
``decoding_step(tokens, t, state)`` gives the logits after ``tokens[:, t]`` (just sampled)
and the new state. :class:`~keras_selfevo.zoo.LanguageModel` implements them by re-running
the network over the context (:func:`uncached_logits`); ``GPT`` keeps a key/value cache and
``CharRNN`` its recurrent state, with the same logits (tested).

**The context past the block size.** A model with learned absolute positions (``gpt``) sees
at most ``block`` tokens, and its cache holds the keys and values of one window of them. When
the window is full, it slides by ``block - keep + 1`` tokens at once: the cache is rebuilt
from the last ``keep`` tokens (one forward pass over them) and the next ``block - keep``
tokens are decoded with it. With ``keep`` half a block, the rebuild costs about one
decoding step per token at a large batch and little at batch 1, and every token sees at
least half a block of context (``block / 2`` to ``block`` tokens, 3/4 of a block on
average); recomputing the last ``block`` tokens for every new token, as nanoGPT does, would
cost a whole forward pass per token. :func:`window_start` is that schedule; the uncached path
follows it too, so both give the same tokens.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_selfevo.layers.token_sampler import fold_seed, sample_tokens


def sliding_keep(block: int) -> int:
    """Tokens kept when a full window of ``block`` tokens slides (half a block, at least 1)."""
    return max(1, block // 2)


def window_start(t: tf.Tensor, block: int) -> tf.Tensor:
    """The first position of the context the token after position ``t`` is predicted from.

    0 while ``t < block``; then the window moves by ``block - keep + 1`` positions each time
    it fills (see the module docstring).
    """
    keep = sliding_keep(block)
    period = block - keep + 1
    last_refill = block + period * ((t - block) // period)
    return tf.where(t < block, tf.zeros_like(t), last_refill - keep + 1)


def uncached_logits(model: Any, tokens: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
    """The logits after ``tokens[:, t]``, from the network run over its whole context.

    The context is ``tokens[:, s:t + 1]`` with ``s = window_start(t, block)`` (from 0 for
    a model without a block size). The network is causal: the tokens after ``t`` in the
    fixed-size slice it reads change nothing.
    """
    block = model.context_window
    if block is None:
        return model(tokens, training=False)["self"][:, t]
    first = window_start(t, block)
    padded = tf.pad(tokens, [[0, 0], [0, block]])
    window = tf.slice(padded, [0, first], [-1, block])
    return model(window, training=False)["self"][:, t - first]


def sample_loop(model: Any, prompt: tf.Tensor, length: tf.Tensor | int, capacity: int,
                temperature: tf.Tensor, top_k: tf.Tensor | int | None,
                top_p: tf.Tensor | float | None, seed: tf.Tensor,
                use_cache: bool = True) -> tf.Tensor:
    """``prompt`` (int32 ids ``[batch, start]``) followed by ``length`` sampled tokens.

    Args:
        model: A :class:`~keras_selfevo.zoo.LanguageModel`.
        prompt: Token ids; ``start`` ≥ 1.
        length: Tokens to sample (a tensor up to ``capacity``, or an int).
        capacity: The most tokens this call may sample (the buffer's size after the prompt).
        temperature: Sampling temperature (0: greedy).
        top_k: Keep the ``k`` most likely ids (``None`` or 0: all).
        top_p: Nucleus mass (``None`` or ≥ 1: all).
        seed: int32 ``[2]``; the token at position ``t`` uses ``fold_seed(seed, t)``.
        use_cache: Decode with the model's cache or state (else re-run the network over
            the context for every token).

    Returns:
        int32 ids ``[batch, start + length]``.
    """
    start = tf.shape(prompt)[1]
    total = start + tf.cast(length, tf.int32)
    tokens = tf.concat([prompt, tf.zeros([tf.shape(prompt)[0], capacity], tf.int32)], 1)
    positions = tf.range(tf.shape(tokens)[1])[None, :]
    if use_cache:
        begin, advance = model.decoding_start, model.decoding_step
    else:
        begin = lambda tokens, start: (uncached_logits(model, tokens, start - 1), ())  # noqa: E731
        advance = lambda tokens, t, state: (uncached_logits(model, tokens, t), ())  # noqa: E731
    logits, state = begin(tokens, start)

    def step(t, tokens, logits, state):
        new = sample_tokens(logits, temperature, top_k, fold_seed(seed, t), top_p)
        tokens = tf.where(positions == t, new[:, None], tokens)
        logits, state = advance(tokens, t, state)
        return t + 1, tokens, logits, state

    _, tokens, _, _ = tf.while_loop(lambda t, *_: t < total, step, (start, tokens, logits, state))
    return tokens[:, :total]
