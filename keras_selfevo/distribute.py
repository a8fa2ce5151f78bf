"""Pick a ``tf.distribute`` strategy from a flag, the same way on CPUs and GPUs."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from keras_selfevo._internal import checks as _checks

STRATEGIES = ("auto", "default", "one_device", "mirrored", "multiworker")

# One strategy per device set, reused: collective instance keys restart with every new
# strategy while TensorFlow's collective executor remembers earlier instances' shapes, so
# a second MirroredStrategy over the same devices can fail with "Shape mismatch in the
# collective instance". TensorFlow allows one MultiWorkerMirroredStrategy per process.
_CACHE: dict[tuple, tf.distribute.Strategy] = {}


def _cluster_size() -> int:
    """Number of tasks in ``TF_CONFIG``'s cluster (0 when it is unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"TF_CONFIG is not a valid JSON object: {error}") from None
    return sum(len(tasks) for tasks in cluster.values())


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Return the strategy named by ``name``.

    Args:
        name: One of
            ``"auto"``: multi-worker when ``TF_CONFIG`` describes a cluster of more than one
            task, mirrored when there is more than one GPU, else the default strategy;
            ``"default"``: no distribution (TensorFlow's default strategy);
            ``"one_device"``: everything on the first GPU, or the CPU;
            ``"mirrored"``: synchronous data parallelism over all GPUs, or over all logical
            CPU devices when there is no GPU (see ``tf.config.set_logical_device_configuration``);
            ``"multiworker"``: ``MultiWorkerMirroredStrategy`` over the cluster in ``TF_CONFIG``.

    Returns:
        A ``tf.distribute.Strategy``; the same object again for the same devices. Batch
        sizes given to ``fit`` under it are global.

    Raises:
        ValueError: ``name`` is unknown, or ``"multiworker"`` is asked for without ``TF_CONFIG``.
    """
    _checks.lookup(STRATEGIES, name, "name", kind="strategy")
    if name == "auto":
        if _cluster_size() > 1:
            name = "multiworker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        names = tuple(device.name for device in devices)
        if ("mirrored", names) not in _CACHE:
            _CACHE["mirrored", names] = tf.distribute.MirroredStrategy(list(names))
        return _CACHE["mirrored", names]
    if _cluster_size() == 0:
        raise ValueError(
            "Strategy 'multiworker' needs the TF_CONFIG environment variable describing the "
            'cluster, e.g. {"cluster": {"worker": ["127.0.0.1:12345", "127.0.0.1:12346"]}, '
            '"task": {"type": "worker", "index": 0}}.'
        )
    if ("multiworker",) not in _CACHE:
        _CACHE["multiworker",] = tf.distribute.MultiWorkerMirroredStrategy()
    return _CACHE["multiworker",]


def is_chief() -> bool:
    """Whether this process writes checkpoints and logs.

    True for the ``chief`` task of ``TF_CONFIG``, for worker 0 when the cluster has no
    chief, and always without ``TF_CONFIG``.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    config = json.loads(raw)
    task = config.get("task", {})
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    return kind == "worker" and index == 0 and "chief" not in config.get("cluster", {})


def task_index() -> int:
    """The task index of this process in ``TF_CONFIG`` (0 without it)."""
    raw = os.environ.get("TF_CONFIG")
    return int(json.loads(raw).get("task", {}).get("index", 0)) if raw else 0


def multi_worker_logs(logs: dict) -> dict:
    """Give a step's scalar logs a length-1 axis under multi-worker collectives.

    Keras averages a step's logs over replicas with ``strategy.reduce("MEAN", v, axis=0)``
    when the strategy spans workers, which fails on scalars ("Invalid reduction dimension
    0", tensorflow/tensorflow#72388). Over a length-1 axis the same reduction is the mean
    over replicas and returns a scalar. Elsewhere the logs pass unchanged.
    """
    strategy = tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {key: tf.reshape(value, [1]) if value.shape.rank == 0 else value
            for key, value in logs.items()}
