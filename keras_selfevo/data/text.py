"""Character vocabularies: text ↔ token ids with padding, start and end tokens."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_selfevo.data.pipeline import numpy_elements, untuned

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


def _check_vocabulary(vocabulary: str) -> None:
    if not isinstance(vocabulary, str) or not vocabulary:
        raise ValueError(f"`vocabulary` must be a non-empty string, got {vocabulary!r}.")
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"`vocabulary` has repeated characters: {vocabulary!r}.")


def vocab_size(vocabulary: str) -> int:
    """Token ids used by ``vocabulary``: the special tokens, then one id per character.

    Raises:
        ValueError: ``vocabulary`` is not a non-empty string of distinct characters.
    """
    _check_vocabulary(vocabulary)
    return len(SPECIAL_TOKENS) + len(vocabulary)


def encode(texts: Sequence[str], vocabulary: str, length: int | None = None,
           add_end: bool = True) -> np.ndarray:
    """Token ids ``[len(texts), length]``: ``<bos>``, the characters, ``<eos>``, padding.

    Args:
        texts: Strings over ``vocabulary``.
        vocabulary: The characters, in id order (ids start after the special tokens).
        length: Width of the result (default: the longest encoded text).
        add_end: Append ``<eos>`` (leave it out for generation prompts).

    Raises:
        ValueError: a character outside the vocabulary, or a text longer than ``length``.
    """
    _check_vocabulary(vocabulary)
    index = {char: i + len(SPECIAL_TOKENS) for i, char in enumerate(vocabulary)}
    rows = []
    for text in texts:
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ValueError(f"Text {text!r} has characters {unknown} outside `vocabulary`.")
        rows.append([BOS] + [index[c] for c in text] + ([EOS] if add_end else []))
    width = max((len(r) for r in rows), default=1) if length is None else length
    out = np.full((len(rows), width), PAD, np.int32)
    for i, row in enumerate(rows):
        if len(row) > width:
            raise ValueError(f"Text {texts[i]!r} needs {len(row)} tokens; `length` is {width}.")
        out[i, : len(row)] = row
    return out


def encode_stream(stream: str, vocabulary: str) -> np.ndarray:
    """The token ids (int32) of one long text, character by character, no special tokens.

    Raises:
        ValueError: characters outside the vocabulary (named).
    """
    _check_vocabulary(vocabulary)
    unknown = sorted(set(stream) - set(vocabulary))
    if unknown:
        raise ValueError(f"The text has characters outside `vocabulary`: {''.join(unknown)!r}.")
    table = np.zeros(max(map(ord, vocabulary)) + 1, np.int32)
    table[[ord(c) for c in vocabulary]] = np.arange(len(vocabulary)) + len(SPECIAL_TOKENS)
    return table[np.frombuffer(stream.encode("utf-32-le"), np.uint32)]


def decode_stream(ids: np.ndarray, vocabulary: str) -> str:
    """The characters of a stream of token ids; special tokens are left out."""
    _check_vocabulary(vocabulary)
    first = len(SPECIAL_TOKENS)
    return "".join(vocabulary[i - first] for i in np.asarray(ids).tolist() if i >= first)


def decode(ids: np.ndarray, vocabulary: str) -> list[str]:
    """Strings of token-id rows: characters up to the first ``<eos>`` or ``<pad>``."""
    _check_vocabulary(vocabulary)
    texts = []
    for row in np.asarray(ids):
        chars = []
        for token in row.tolist():
            if token == BOS:
                continue
            if token in (EOS, PAD):
                break
            chars.append(vocabulary[token - len(SPECIAL_TOKENS)])
        texts.append("".join(chars))
    return texts


def _texts(source: Sequence[str] | tf.data.Dataset) -> list[str]:
    if isinstance(source, tf.data.Dataset):
        texts = []
        for element in numpy_elements(source):
            value = element["text"] if isinstance(element, dict) else element
            texts.append(value.decode() if isinstance(value, bytes) else str(value))
        return texts
    if isinstance(source, str) or not isinstance(source, Sequence):
        raise ValueError("`texts` must be a list of strings or a tf.data.Dataset of texts.")
    return list(source)


def language_model_dataset(texts: Sequence[str] | tf.data.Dataset, vocabulary: str,
                           length: int | None = None) -> tf.data.Dataset:
    """Next-token examples ``(tokens, {"self": next tokens})``, unbatched, int32 ids.

    Each text becomes ``<bos> text <eos>`` padded to ``length + 1`` tokens; the input is the
    first ``length`` tokens and the self target the ``length`` token ids that follow (after
    ``<eos>`` the target is ``<pad>``). A SelfEvolvingModel scores them with its compiled
    self-loss: the log-likelihood of each id, or BCE against its one-hot.

    Args:
        texts: Strings, or a dataset of strings or of ``{"text": ...}`` dicts (TFDS).
        vocabulary: The characters.
        length: Time steps per example (default: the longest text + 1).
    """
    ids = encode(_texts(texts), vocabulary, None if length is None else length + 1)
    ids = ids.astype(np.int32)
    return untuned(tf.data.Dataset.from_tensor_slices((ids[:, :-1], {"self": ids[:, 1:]})))
