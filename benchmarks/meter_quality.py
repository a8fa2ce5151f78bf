"""The meter poet's quality on many lines: the pretrained model against evolved ones.

The evolve loop logs each generation's share of perfect lines on its own few hundred
samples, which is noisy (±0.015 at 384 lines). This script scores the pretrained
checkpoint and the last generation of each given ``keras-selfevo evolve
models/evolve_meter`` run on the same ``--lines`` fresh prompts (one line each, the run's
temperature, one seed): mean meter reward, share of perfect pentameter lines, share of
lines whose words are all in the dictionary, distinct word 4-grams, and the whole
validation split's nats/char. Writes ``results/meter_quality.json``.

    python benchmarks/meter_quality.py runs/shakespeare_gpt/checkpoint.keras runs/evolve_meter_*
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import report  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pretrained", help="the .keras checkpoint the runs started from")
    parser.add_argument("runs", nargs="*", help="evolve output folders (with generations/last)")
    parser.add_argument("--lines", type=int, default=1024, help="prompts scored per model")
    parser.add_argument("--seed", type=int, default=12345, help="seed of prompts and sampling")
    args = parser.parse_args()

    import keras_selfevo as kse
    from keras_selfevo.data import language_data, shakespeare
    from keras_selfevo.evolve import meter
    from keras_selfevo.zoo import load_checkpoint

    train = np.concatenate(list(language_data.shakespeare_streams("train").values()))
    validation = np.concatenate(list(language_data.shakespeare_streams("validation").values()))
    environment = kse.evolve.MeterEnvironment(train, validation, shakespeare.vocabulary())
    observations = environment.observe(args.lines, args.seed)

    def score(name, model, temperature):
        _, actions = environment.act(model, observations, temperature, 0.0, args.seed)
        lines = environment.lines(actions)
        rewards = np.array([meter.meter_reward(line) for line in lines])
        return {
            "model": name,
            "temperature": temperature,
            "mean meter reward": float(rewards.mean()),
            "perfect lines": float(np.mean(rewards >= 1.0)),
            "all words known": float(np.mean([meter.scansion(x) is not None for x in lines])),
            "distinct 4-grams": environment.describe(actions)["distinct_4grams"],
            "validation nats/char": model.nats_per_char(validation, 64),
        }

    rows = []
    temperatures = {}
    for run in args.runs:
        with open(os.path.join(run, "history.json")) as handle:
            temperatures[run] = json.load(handle)["config"]["temperature"]
    for temperature in sorted(set(temperatures.values())) or [0.6]:
        rows.append(score("pretrained", load_checkpoint(args.pretrained), temperature))
    for run in args.runs:
        model = load_checkpoint(args.pretrained)
        model.compile(optimizer="adam")
        model.optimizer.build(model.trainable_variables)
        model.load_weights(os.path.join(run, "generations", "last", "model.weights.h5"))
        rows.append(score(os.path.basename(run.rstrip("/")), model, temperatures[run]))
    report("meter_quality", rows, lines=args.lines, seed=args.seed)


if __name__ == "__main__":
    main()
