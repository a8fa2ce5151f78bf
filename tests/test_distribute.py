import json

import numpy as np
import pytest
import tensorflow as tf

from keras_selfevo import distribute


def test_mirrored_uses_both_logical_cpus(two_cpus):
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2
    suffix = lambda name: name.split("device:")[-1]  # noqa: E731
    assert sorted(map(suffix, strategy.extended.worker_devices)) == sorted(map(suffix, two_cpus))


def test_mirrored_sums_per_replica_values(two_cpus):
    strategy = distribute.get_strategy("mirrored")
    per_replica = strategy.run(
        lambda: tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32)
        + 1.0
    )
    total = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
    np.testing.assert_allclose(total.numpy(), 3.0)


def test_default_and_one_device(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.get_strategy("default") is tf.distribute.get_strategy()
    assert distribute.get_strategy("one_device").num_replicas_in_sync == 1
    # No GPU and no cluster: auto picks the default strategy.
    assert distribute.get_strategy("auto") is tf.distribute.get_strategy()


def test_unknown_name_and_multiworker_without_tf_config(monkeypatch):
    with pytest.raises(ValueError, match="Unknown strategy `name`='mirror'"):
        distribute.get_strategy("mirror")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distribute.get_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not a valid JSON"):
        distribute.get_strategy("auto")


def test_auto_counts_cluster_tasks(monkeypatch):
    config = {"cluster": {"worker": ["127.0.0.1:1", "127.0.0.1:2"]},
              "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert distribute._cluster_size() == 2


def test_mirrored_strategy_is_reused(two_cpus):
    assert distribute.get_strategy("mirrored") is distribute.get_strategy("mirrored")
