"""State built before the first trace, so a train step is traced once.

Keras builds an optimizer and the compiled metrics inside the first trace of the train
function when no distribution strategy is set, and ``tf.function`` traces a function that
created variables a second time. Models whose step is costly to trace (a meta-step with
second-order gradients, a Transformer) build that state beforehand from the data's
structure instead.
"""

from __future__ import annotations

from typing import Any


def data_structure(iterator: Any = None, data_batch: Any = None) -> Any:
    """The structure of one batch, or None when neither argument tells it.

    ``data_batch`` itself, else the specs of the data Keras's epoch ``iterator`` reads
    (nothing is consumed from it).
    """
    if data_batch is not None:
        return data_batch
    adapter = getattr(iterator, "data_adapter", None)
    return adapter.get_tf_dataset().element_spec if adapter is not None else None
