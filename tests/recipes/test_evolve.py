import json

import pytest

from keras_selfevo import cli

TINY = {"environment": "bandit", "model": "mnist_cnn", "model_args": {"filters": 4, "units": 8},
        "dataset": "selfevo_glyphs/small", "pretrain_epochs": 1, "generations": 2,
        "samples_per_generation": 40, "batch_size": 20, "baseline": True}



def test_evolve_writes_history_curve_and_resumes(tmp_path, glyphs_small_dir, capsys, write_recipe):
    out = tmp_path / "run"
    # `--set generations=2` overrides the recipe's 5; `--generations`, when given, wins.
    argv = ["evolve", write_recipe(TINY, generations=5), "--output", str(out), "--data-dir",
            glyphs_small_dir, "--set", "generations=2"]
    assert cli.main(argv) == 0
    report = json.loads((out / "history.json").read_text())
    assert [row["generation"] for row in report["history"]] == [0, 1, 2]
    assert len(report["baseline_history"]) == 3
    assert (out / "reward_curve.png").read_bytes()[:4] == b"\x89PNG"
    # One line per generation with the supervised twin's accuracy beside, then the comparison.
    out_lines = capsys.readouterr().out.splitlines()
    lines = [line for line in out_lines if line.startswith("[evolve] generation ")]
    for generation, line in zip((1, 2), lines):
        row, twin = report["history"][generation], report["baseline_history"][generation]
        assert line.startswith(f"[evolve] generation {generation}/2: reward "
                               f"{row['mean_reward']:.3f}"), line
        assert (f"held-out accuracy {row['accuracy']:.3f} (supervised {twin['accuracy']:.3f})"
                in line), line
    first, last = report["history"][0], report["history"][-1]
    assert lines[2].startswith("[evolve] generation 0 -> 2: "), lines
    assert f"held-out accuracy {first['accuracy']:.3f} -> {last['accuracy']:.3f}" in lines[2]
    assert f"supervised baseline (true labels, same network and budget) " \
           f"{report['baseline_history'][-1]['accuracy']:.3f}" in lines[2]
    assert len(lines) == 3
    # A second run into the same folder must say how to continue it.
    assert cli.main(argv) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert cli.main(argv + ["--resume", "--generations", "3"]) == 0
    history = json.loads((out / "history.json").read_text())["history"]
    assert [row["generation"] for row in history] == [0, 1, 2, 3]


def test_bad_recipes_exit_2(tmp_path, capsys, write_recipe):
    for changes, fragment in (({"generations": 0}, "`generations` must be a positive integer"),
                              ({"environment": "chess"}, "`environment` must be"),
                              ({"alpha": "high"}, "`alpha` must be a number in [0, 1]"),
                              ({"keep": "best"}, "`keep` must be one of"),
                              ({"reward_weighting": "gpro"}, "`reward_weighting` must be one"),
                              ({"kl_beta": -0.1}, "`kl_beta` must be a number ≥ 0"),
                              ({"reward_weighting": "grpo"},
                               "`samples_per_observation` must be ≥ 2"),
                              ({"reward_weighting": "rloo", "samples_per_observation": 3},
                               "`batch_size` (20) must be a multiple"),
                              ({"rewarded_fraction": 0.0}, "`rewarded_fraction` must be a "
                               "number in (0, 1]"),
                              ({"rewarded_fraction": 0.5, "environment": "generation"},
                               "`rewarded_fraction` applies to the bandit"),
                              ({"novelty": 0.5}, "`novelty` applies to the meter environment"),
                              ({"novelty": 2}, "`novelty` must be a number in [0, 1]"),
                              ({"score_at_temperature": True},
                               "`score_at_temperature` needs reinforce_loss 'log_likelihood'"),
                              ({"score_at_temperature": True, "temperature": 0.0,
                                "reinforce_loss": "log_likelihood"},
                               "and a `temperature` > 0, got 'log_likelihood' at 0.0"),
                              ({"alpha_end": 0.2, "keep": "best_per_observation"},
                               "`alpha_end` needs keep='all'"),
                              ({"evolve_min_learning_rate": 1e-4, "keep": "min_reward"},
                               "`evolve_min_learning_rate` needs keep='all'"),
                              ({"evolve_min_learning_rate": 0.1, "evolve_learning_rate": 0.01},
                               "`evolve_min_learning_rate` (0.1) must be at most the loop's "
                               "rate (0.01)"),
                              ({"evolve_min_learning_rate": -1e-4},
                               "`evolve_min_learning_rate` must be a number ≥ 0"),
                              ({"unrewarded_fraction": 1.0, "rewarded_fraction": 0.5},
                               "`unrewarded_fraction` must be a number in [0, 1)"),
                              ({"unrewarded_fraction": 0.5},
                               "`unrewarded_fraction` needs the bandit environment with "
                               "`rewarded_fraction` < 1"),
                              ({"unrewarded_fraction": 0.5, "rewarded_fraction": 0.5,
                                "reward_weighting": "awr"},
                               "`unrewarded_fraction` needs a `reward_weighting` that gives "
                               "reward-0 rows no weight")):
        assert cli.main(["evolve", write_recipe(TINY, **changes),
                         "--output", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_unrewarded_images_and_an_alpha_cosine_over_the_loop(tmp_path, glyphs_small_dir,
                                                             write_recipe):
    import numpy as np

    from keras_selfevo.recipes import evolve as recipes

    recipe = write_recipe(TINY, model_args={"filters": 4, "units": 8,
                                           "self_task": "consistency", "confidence": 0.5},
                     pretrain_epochs=0, baseline=False, rewarded_fraction=0.5,
                     unrewarded_fraction=0.5, alpha=0.0, alpha_end=0.4,
                     reward_weighting="normalized")
    report = recipes.evolve(recipe, str(tmp_path / "run"), data_dir=glyphs_small_dir, verbose=0)
    # 40 samples + 40 unrewarded images a generation, batch 20: 4 steps each, 8 in all.
    alpha = [0.4 * 0.5 * (1 - np.cos(np.pi * step / 8)) for step in range(8)]
    logged = [row["alpha"] for row in report["history"][1:]]
    np.testing.assert_allclose(logged, [np.mean(alpha[:4]), np.mean(alpha[4:])], atol=1e-6)


def test_evolve_learning_rate_is_used_by_the_loop_not_by_pretraining(tmp_path, write_recipe):
    import numpy as np

    from keras_selfevo import zoo
    from keras_selfevo.recipes import evolve as recipes

    config = recipes.load_evolve_recipe(
        write_recipe(TINY, learning_rate=0.01, evolve_learning_rate=0.001))
    model = zoo.build("mnist_cnn", filters=4, units=8, num_classes=3, input_shape=(28, 28, 1))
    recipes.recompile(model, config, 1.0, pretraining=True)
    assert np.isclose(float(model.optimizer.learning_rate), 0.01)
    recipes.recompile(model, config, 0.5)
    assert np.isclose(float(model.optimizer.learning_rate), 0.001)
    unset = recipes.load_evolve_recipe(write_recipe(TINY, learning_rate=0.01))
    recipes.recompile(model, unset, 0.5)
    assert np.isclose(float(model.optimizer.learning_rate), 0.01)


def test_the_loop_rate_follows_a_cosine_to_evolve_min_learning_rate(glyphs_small_dir,
                                                                     write_recipe):
    import numpy as np

    from keras_selfevo.recipes import evolve as recipes

    config = recipes.load_evolve_recipe(write_recipe(
        TINY, pretrain_epochs=0, baseline=False, evolve_learning_rate=0.01,
        evolve_min_learning_rate=0.001, epochs_per_generation=2), {"data_dir": glyphs_small_dir})
    environment = recipes.ENVIRONMENTS[config["environment"]](config)
    model = recipes.compiled_model(config, environment, 0.5)
    # 40 samples a generation, batch 20, 2 epochs: 4 steps a generation, 8 over the loop.
    cosine = [0.001 + 0.009 * 0.5 * (1 + np.cos(np.pi * step / 8)) for step in range(10)]
    rates = []
    for step in range(10):
        model.optimizer.iterations.assign(step)
        rates.append(float(model.optimizer.learning_rate))
    np.testing.assert_allclose(rates, cosine[:9] + [0.001], rtol=1e-5)
    model.optimizer.iterations.assign(0)
    recipes._loop(model, environment, config, None).run(config["generations"], verbose=0)
    assert int(model.optimizer.iterations) == 8
    assert np.isclose(float(model.optimizer.learning_rate), 0.001)
    with pytest.raises(ValueError, match="needs the loop's environment"):
        recipes.recompile(model, config, 0.5)


def test_score_at_temperature_gives_the_loop_the_sampling_temperature(write_recipe):
    from keras_selfevo import zoo
    from keras_selfevo.recipes import evolve as recipes

    model = zoo.build("mnist_cnn", filters=4, units=8, num_classes=3, input_shape=(28, 28, 1))
    for tempered, want in ((True, 0.7), (False, 1.0)):
        config = recipes.load_evolve_recipe(write_recipe(
            TINY, reinforce_loss="log_likelihood", temperature=0.7,
            score_at_temperature=tempered))
        recipes.recompile(model, config, 0.5)
        assert model.reinforce_loss.temperature == want
        recipes.recompile(model, config, 1.0, pretraining=True)
        assert model.reinforce_loss.temperature == 1.0


def test_a_pretrained_checkpoint_with_group_relative_weighting(tmp_path, write_recipe):
    from keras_selfevo import zoo

    checkpoint = tmp_path / "lm.keras"
    zoo.build("char_rnn", vocabulary="0123456789+=", units=8, seed=0).save(checkpoint)
    recipe = write_recipe(TINY, environment="generation", model="char_rnn",
                     dataset="selfevo_text/arithmetic", model_args={},
                     pretrained=str(checkpoint), reward_weighting="rloo", keep="all",
                     samples_per_generation=8, samples_per_observation=4, batch_size=8,
                     kl_beta=0.1, held_out_prompts=20, length=9, generations=1)
    out = tmp_path / "run"
    assert cli.main(["evolve", recipe, "--output", str(out), "--data-dir",
                     str(tmp_path / "data")]) == 0
    report = json.loads((out / "history.json").read_text())
    assert {"kl", "held_out_valid", "train_prompt_valid"} <= set(report["history"][1])
    assert len(report["before"]["samples"]) == len(report["samples"]) == 20


def test_a_pretrained_model_that_is_not_a_language_model_writes_nothing(tmp_path, capsys,
                                                                        write_recipe):
    from keras_selfevo import zoo

    checkpoint = tmp_path / "cnn.keras"
    zoo.build("mnist_cnn", filters=2, units=4, seed=0).save(checkpoint)
    recipe = write_recipe(TINY, environment="generation", model="char_rnn",
                          dataset="selfevo_text/arithmetic", model_args={},
                          pretrained=str(checkpoint), length=9, generations=1)
    out = tmp_path / "run"
    assert cli.main(["evolve", recipe, "--output", str(out), "--data-dir",
                     str(tmp_path / "data")]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]  # after TFDS's progress bars
    assert error.startswith("keras-selfevo: error: `pretrained`") and "language model" in error
    assert not out.exists()
