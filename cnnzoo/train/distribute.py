"""Distribution strategies by name: "mirrored" (all local GPUs) and "multiworker" (TF_CONFIG cluster).

`MultiWorkerMirroredStrategy` must exist before TensorFlow runs its first op in the process, so create it at
program start with `get_strategy("multiworker")`; the instance is cached, and a later `strategy="multiworker"`
in `fit`/`finetune` reuses it. Each worker runs the same script; TF_CONFIG gives the cluster and the worker's
index. The data of each worker is sharded automatically (by element for in-memory data).

Example:
    >>> strategy = cnnzoo.train.distribute.get_strategy("multiworker")   # first thing in the script
    >>> data = cnnzoo.data.from_arrays(x, y)
    >>> cnnzoo.train.fit(model, data, epochs=3, strategy=strategy)
"""
from __future__ import annotations

import contextlib
import json
import os

import tensorflow as tf

from cnnzoo._checks import received

__all__ = ["get_strategy", "is_chief", "STRATEGY_NAMES"]

STRATEGY_NAMES = ("mirrored", "multiworker")
_CACHE: dict[str, tf.distribute.Strategy] = {}


def get_strategy(strategy):
    """Return a `tf.distribute.Strategy` for a strategy object, "mirrored", "multiworker", or None (None)."""
    if strategy is None or isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy not in STRATEGY_NAMES:
        raise ValueError("`strategy` must be a tf.distribute.Strategy, 'mirrored', 'multiworker' or None. "
                         + received("strategy", strategy))
    if strategy not in _CACHE:
        if strategy == "mirrored":
            _CACHE[strategy] = tf.distribute.MirroredStrategy()
        else:
            if "TF_CONFIG" not in os.environ:
                raise ValueError("strategy='multiworker' needs the TF_CONFIG environment variable (cluster and "
                                 "task index). " + received("strategy", strategy))
            _CACHE[strategy] = tf.distribute.MultiWorkerMirroredStrategy()
    return _CACHE[strategy]


def is_chief(strategy=None) -> bool:
    """True on the worker that writes checkpoints and logs (worker 0 / chief; always True without a cluster)."""
    if strategy is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    kind = task.get("type", "worker")
    if "chief" in config.get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and int(task.get("index", 0)) == 0


def broadcast_from_chief(variables, strategy) -> None:
    """Give every worker the chief's values of `variables` (multi-worker only; a no-op otherwise).

    Variables created in a MultiWorkerMirroredStrategy scope start equal, but weights copied in afterwards (a
    model rebuilt in the scope) or statistics each worker estimated alone (BN recalibration) are local: without
    this, workers would train from different weights and end apart.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or not variables:
        return
    workers = max(1, strategy.extended._num_workers)  # noqa: SLF001 - no public count of workers
    local_replicas = max(1, strategy.num_replicas_in_sync // workers)
    factor = (1.0 / local_replicas) if is_chief(strategy) else 0.0
    tensors = [v.value if hasattr(v, "value") else v for v in variables]

    @tf.function
    def gather():
        def replica_fn():
            context = tf.distribute.get_replica_context()
            return context.all_reduce(tf.distribute.ReduceOp.SUM,
                                      [tf.identity(t) * tf.cast(factor, t.dtype) for t in tensors])

        return strategy.run(replica_fn)

    values = gather()
    for variable, value in zip(variables, values):
        variable.assign(strategy.experimental_local_results(value)[0])


@contextlib.contextmanager
def multiworker_fit_fix(model, strategy):
    """Within the block, `model.fit` works under MultiWorkerMirroredStrategy in Keras 3.15.

    Two Keras bugs (keras-team/keras#20585) are worked around, for this model and this block only:

    - Keras builds the model symbolically from a first batch that it all-reduces with `strategy.reduce("MEAN")`,
      which fails for multi-worker collectives ("Attempt to convert a value (PerReplica ...)"). The batch only
      gives shapes, so this worker's own replica batch serves as well.
    - each step's logs (scalar metric values) are reduced with `strategy.reduce("MEAN", v, axis=0)`, which fails
      on scalars ("Invalid reduction dimension 0 for input with 0 dimensions"); scalars are reduced with
      `axis=None` instead.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    from keras.src.backend.tensorflow import trainer as keras_tf_trainer

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build_from_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)  # noqa: SLF001 - the step Keras itself runs

    original_reduce = keras_tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy_, reduction="auto"):
        if reduction in ("auto", "mean") and isinstance(strategy_, tf.distribute.MultiWorkerMirroredStrategy):
            def reduce_one(value):
                if getattr(local(value), "shape", None) is not None and local(value).shape.rank == 0:
                    return strategy_.reduce("MEAN", value, axis=None)
                return original_reduce(value, strategy_, reduction)

            return tf.nest.map_structure(reduce_one, values)
        return original_reduce(values, strategy_, reduction)

    model._maybe_symbolic_build = build_from_local_batch  # noqa: SLF001
    keras_tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        keras_tf_trainer.reduce_per_replica = original_reduce
        del model._maybe_symbolic_build
