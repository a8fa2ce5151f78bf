"""A keras-hub GPT-2 (built from its config, nothing downloaded) as the loop's policy."""

import os

import keras
import keras_hub
import numpy as np
import pytest

import keras_selfevo as kse

VOCABULARY = "0123456789+="


def _backbone():
    keras.utils.set_random_seed(0)
    return keras_hub.models.GPT2Backbone(vocabulary_size=15, num_layers=1, num_heads=2,
                                         hidden_dim=16, intermediate_dim=32, dropout=0.0,
                                         max_sequence_length=16)


@pytest.mark.parametrize("as_causal_lm", [False, True])
def test_runs_a_generation_saves_and_reloads(tmp_path, as_causal_lm):
    backbone = _backbone()
    network = keras_hub.models.GPT2CausalLM(backbone) if as_causal_lm else backbone
    model = kse.zoo.HubLanguageModel(network, vocabulary=VOCABULARY)
    model.compile(optimizer="adam", alpha=0.5, reward_weighting="grpo", kl_beta=0.1)
    env = kse.evolve.VerifiableGeneration(VOCABULARY, "arithmetic", length=9,
                                          corpus=["1+2=3", "10+5=15"], corpus_fraction=0.5,
                                          held_out=["3+4=7"])
    before = [np.array(w) for w in model.trainable_weights]
    history = kse.evolve.SelfEvolution(model, env, samples_per_generation=4,
                                       samples_per_observation=2, batch_size=4).run(1, verbose=0)
    assert {"kl", "held_out_valid", "distinct"} <= set(history[1])
    assert any(np.abs(a - np.array(b)).max() > 0 for a, b in zip(before, model.trainable_weights))
    ids = np.array([[1, 4, 13, 5, 14]], np.int32)  # <bos> 1 + 2 =
    # Logits agree with the network's own, through its head or its tied embedding.
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids, bool)}
    own = (network(inputs) if as_causal_lm else
           backbone.token_embedding(backbone(inputs), reverse=True))
    np.testing.assert_allclose(model(ids)["self"], own, atol=1e-6)
    path = os.path.join(tmp_path, "hub.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded, kse.zoo.HubLanguageModel)
    np.testing.assert_allclose(reloaded(ids)["policy"], model(ids)["policy"], atol=1e-6)
    assert reloaded.generate(["1+2="], 3, temperature=0.0) == model.generate(
        ["1+2="], 3, temperature=0.0)


def test_xla_and_graph_sample_alike():
    model = kse.zoo.HubLanguageModel(_backbone(), vocabulary=VOCABULARY)
    prompt = np.array([[1, 4, 13], [1, 5, 13]], np.int32)
    settings = dict(temperature=1.0, top_k=5, seed=np.array([3, 4], np.int32))
    np.testing.assert_array_equal(model.generate_ids(prompt, 8, jit_compile=True, **settings),
                                  model.generate_ids(prompt, 8, jit_compile=False, **settings))


def test_zoo_builder_and_adapt():
    model = kse.zoo.build("hub_gpt2", vocabulary=VOCABULARY, num_layers=1, num_heads=2,
                          hidden_dim=16, intermediate_dim=32, max_sequence_length=16, seed=0)
    assert model.context_window == 16
    result = kse.adapt(model, ["1+2=34+5=9" * 40], steps=3, batch_size=2, held_out=0.2)
    assert np.isfinite(result.before) and np.isfinite(result.after)


def test_bad_networks():
    with pytest.raises(ValueError, match="must be a keras_hub.models.CausalLM or Backbone"):
        kse.zoo.HubLanguageModel(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="does not match `vocabulary`"):
        kse.zoo.HubLanguageModel(_backbone(), vocabulary="01")
