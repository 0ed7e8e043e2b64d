"""Mixed precision, scoped to one model: the global Keras dtype policy is never changed.

`fit` and `finetune` rebuild the model with every layer under the chosen policy except the classifier and what
follows it (float32, so the softmax and the loss are float32), train it (float16 gets a `LossScaleOptimizer`:
loss scaling is automatic), then rebuild it in float32, so the returned model saves, reloads and exports in
float32.

Choices for `mixed_precision`: "auto" (float16 when a GPU is visible, else float32), "float16"/"fp16",
"bf16"/"bfloat16" (GPUs, or CPUs with AVX512_BF16/AMX-BF16), "float32"/None/False.

Example:
    >>> resolve_policy("auto")   # 'float32' on a CPU-only machine
"""
from __future__ import annotations

import contextlib
import functools

import keras
import tensorflow as tf

from cnnzoo._checks import received
from cnnzoo.introspect import policy_names
from cnnzoo.train._model import rebuild

__all__ = ["resolve_policy", "cpu_supports_bf16", "gpu_visible", "float32_model", "mixed_model", "policy_scope"]

_ALIASES = {
    None: "float32", False: "float32", "float32": "float32", "fp32": "float32", "off": "float32",
    "none": "float32", "float16": "mixed_float16", "fp16": "mixed_float16", "mixed_float16": "mixed_float16",
    "bf16": "mixed_bfloat16", "bfloat16": "mixed_bfloat16", "mixed_bfloat16": "mixed_bfloat16",
    "auto": "auto", True: "auto",
}


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512_BF16 or AMX-BF16 (fast bfloat16 matrix multiplies on the CPU)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def gpu_visible() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_policy(mixed_precision="auto", *, gpu: bool | None = None, cpu_bf16: bool | None = None) -> str:
    """Map a `mixed_precision` choice to a Keras policy name ("float32", "mixed_float16", "mixed_bfloat16").

    `gpu` / `cpu_bf16` override the hardware probes (for tests and planning).
    """
    key = mixed_precision.lower() if isinstance(mixed_precision, str) else mixed_precision
    if key not in _ALIASES:
        raise ValueError("`mixed_precision` must be one of 'auto', 'float16', 'bf16', 'float32' or None. "
                         + received("mixed_precision", mixed_precision))
    policy = _ALIASES[key]
    gpu = gpu_visible() if gpu is None else gpu
    if policy == "auto":
        return "mixed_float16" if gpu else "float32"
    if policy == "mixed_bfloat16" and not gpu:
        cpu_bf16 = cpu_supports_bf16() if cpu_bf16 is None else cpu_bf16
        if not cpu_bf16:
            raise ValueError("bfloat16 needs a GPU or a CPU with AVX512_BF16 / AMX-BF16; this machine has "
                             "neither. " + received("mixed_precision", mixed_precision))
    return policy


def mixed_model(model, policy: str, strategy=None):
    """`model` under `policy` (classifier float32), rebuilt only when needed (or when a strategy needs it)."""
    names = policy_names(model)
    needs_policy = policy != "float32" and names != {policy, "float32"} and names != {policy}
    needs_strategy = strategy is not None and not _created_in(strategy, model)
    if needs_policy or needs_strategy:
        return rebuild(model, policy=policy if policy != "float32" else _dominant(names), strategy=strategy)
    return model


def _dominant(names: set) -> str:
    names = set(names) - {"float32"}
    return names.pop() if len(names) == 1 else "float32"


def _created_in(strategy, model) -> bool:
    if not model.weights:
        return True
    return strategy.extended.variable_created_in_scope(model.weights[0].value)


def float32_model(model):
    """`model` itself when every layer is float32, else a float32 rebuild with the same weights."""
    if policy_names(model) <= {"float32"}:
        return model
    return rebuild(model, policy="float32")


@contextlib.contextmanager
def policy_scope(policy: str):
    """Set the global dtype policy within the block and restore the previous one afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
