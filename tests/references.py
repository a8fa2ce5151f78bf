"""Reference implementations written from the formulas, shared by tests."""

import numpy as np


def log_softmax(logits):
    """``log softmax`` over the last axis, shifted by the maximum for stability."""
    logits = logits - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def numpy_weights(name, r, batch=None):
    """Reference weightings written from their formulas."""
    batch = r if batch is None else batch
    if name == "raw":
        return r
    if name == "normalized":
        return (r - batch.min()) / (batch.std() + 1e-8)
    if name == "awr":
        return np.minimum(np.exp((r - batch.mean()) / (batch.std() + 1e-8)), 20.0)
    if name == "filter":
        return (r >= np.quantile(batch, 0.5)).astype(np.float32)
    raise KeyError(name)
