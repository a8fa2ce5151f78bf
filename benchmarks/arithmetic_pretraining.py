"""How far next-token pretraining alone takes the evolve_arithmetic model.

Pretrains the recipe's model (its own code path) in chunks of epochs and, after each chunk,
prints the valid-sample rate of 2,000 samples from ``<bos>`` at temperature 0.8, their
distinct share, and the greedy completion rate of the held-out prompts ``a+b=``. The cards
quote it as a reference for what the loop adds.

    python benchmarks/arithmetic_pretraining.py NAME '{"recipe key": value, ...}' CHUNKS EPOCHS
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_selfevo.evolve import rewards  # noqa: E402
from keras_selfevo.recipes import evolve  # noqa: E402

RECIPE = os.path.join(os.path.dirname(__file__), "..", "models", "evolve_arithmetic")


def main(name: str, overrides: dict, chunks: int, epochs_per_chunk: int) -> None:
    """Pretrain ``chunks`` × ``epochs_per_chunk`` epochs; print one JSON row per chunk."""
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    config = evolve.load_evolve_recipe(RECIPE, overrides)
    keras.utils.set_random_seed(config["seed"])
    environment = evolve.ENVIRONMENTS[config["environment"]](config)
    model = evolve.compiled_model(config, environment, 1.0)
    evolve.recompile(model, config, 1.0, pretraining=True)
    data = environment.pretraining_data(config["batch_size"], config["seed"])
    start = time.time()
    for chunk in range(chunks):
        model.fit(**data, epochs=(chunk + 1) * epochs_per_chunk,
                  initial_epoch=chunk * epochs_per_chunk, verbose=0)
        observations = environment.observe(2000, 1)
        _, actions = environment.act(model, observations, 0.8, 0.0, 7)
        texts = environment.decode(actions)
        print(json.dumps({
            "name": name, "epochs": (chunk + 1) * epochs_per_chunk,
            "valid": float(np.mean(rewards.score(texts, "arithmetic") >= 1)),
            "distinct": len(set(texts)) / len(texts),
            "held_out": environment.completion_rate(model, environment.held_out),
            "seconds": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
