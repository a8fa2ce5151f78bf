"""``keras-selfevo generate``: samples from a saved language model of the zoo."""

from __future__ import annotations

from keras_selfevo.layers.token_sampler import check_sampling
from keras_selfevo.zoo.checkpoint import load_checkpoint
from keras_selfevo.zoo.language_model import LanguageModel

# One call in a fresh process pays the sampling loop's compile once: XLA's compile is longer
# than the graph's, and its faster steps repay it only past about this many new tokens
# (first call of the CPU-recipe gpt, 200 tokens: 7.1 s with XLA, 4.8 s without; 1,000
# tokens: 6.8 s and 7.1 s; benchmarks/README.md, "Sampling speed").
XLA_FROM_LENGTH = 1000


def generate_from_file(model_path: str, prompt: str, length: int, *,
                       temperature: float = 0.8, top_k: int | None = None,
                       top_p: float | None = None, seed: int = 0,
                       num_samples: int = 1) -> list[str]:
    """``num_samples`` continuations of ``prompt`` by the language model saved at a path.

    Raises:
        ValueError: a bad setting, a file that is not a language model of the zoo, or a
            prompt with characters outside its vocabulary (named); before any sampling.
    """
    check_sampling(temperature, top_k, top_p)
    model = load_checkpoint(model_path)
    if not isinstance(model, LanguageModel) or model.vocabulary is None:
        raise ValueError(f"`model` {model_path!r} is not a language model of the zoo with a "
                         f"vocabulary (gpt, char_rnn); it holds a {type(model).__name__}.")
    missing = "".join(sorted(set(prompt) - set(model.vocabulary)))
    if missing:
        raise ValueError(f"`--prompt` holds characters outside the model's vocabulary: "
                         f"{missing!r}.")
    model.sampling_jit_compile = length >= XLA_FROM_LENGTH
    return model.generate([prompt] * num_samples, length, temperature=temperature,
                          top_k=top_k, top_p=top_p, seed=seed)
