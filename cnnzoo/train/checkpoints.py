"""Per-epoch checkpoints (model weights, optimizer state, stage and epoch) and resume after a crash.

Layout of `checkpoint_dir`: `ckpt-00007/` holds `model.weights.h5` and `optimizer.npz`; `state.json` names the
newest complete one and records the stage, the epochs done and the history so far. A checkpoint is written in a
fresh folder and `state.json` is replaced atomically afterwards, so a process killed at any moment leaves the
previous checkpoint intact. A run restarted with the same arguments continues after the last completed epoch;
different arguments (model architecture, optimizer and its options, rates and schedules, augmentation, stages,
epochs, batch size, seed, data: class names, counts and a fingerprint of the examples) raise
`CheckpointMismatchError` naming each difference, rather than mix two runs; unreadable checkpoint files raise
`CheckpointError`. Both are ValueErrors. Not saved: early-stopping and reduce-on-plateau
counters (they restart with the resumed stage) and the data order within an epoch. In a multi-worker run the
chief writes, and every worker reads, so `checkpoint_dir` must be storage all workers share.

Example:
    >>> cnnzoo.finetune(model, data, checkpoint_dir="runs/flowers")   # kill it, run it again: it resumes
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import uuid

import keras
import numpy as np

from cnnzoo._checks import check_directory, received
from cnnzoo.introspect import all_layers

__all__ = ["Checkpointer", "CheckpointError", "CheckpointMismatchError", "model_fingerprint", "data_fingerprint",
           "describe"]

STATE_FILE = "state.json"
_MISSING = "<absent>"


class CheckpointError(ValueError):
    """A file in `checkpoint_dir` is missing, truncated or corrupt (the message names the file)."""


class CheckpointMismatchError(CheckpointError):
    """`checkpoint_dir` holds a run started with other arguments. `.differences` lists (argument, saved, now)."""

    def __init__(self, message: str, differences: list):
        super().__init__(message)
        self.differences = differences


class Checkpointer:
    """Saves and restores a run's checkpoints in `directory`.

    `fingerprint` is a JSON-able description of the run's arguments; resuming with another one is refused.
    `enabled=False` (a non-chief worker) makes `save` a no-op while `load_state` still reads.
    """

    def __init__(self, directory: str, fingerprint: dict, *, enabled: bool = True):
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError("`checkpoint_dir` must be a path. " + received("checkpoint_dir", directory))
        self.directory = check_directory("checkpoint_dir", directory, create=enabled)  # a file there: ValueError
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.enabled = enabled
        if enabled:
            current = self._current_folder()
            for entry in os.listdir(self.directory):  # leftovers of a process killed while writing
                if entry.startswith((".tmp-", f".{STATE_FILE}.")) or (entry.startswith("ckpt-") and entry != current):
                    shutil.rmtree(os.path.join(self.directory, entry), ignore_errors=True)

    # -- reading ---------------------------------------------------------------------------------------------
    def load_state(self) -> dict | None:
        """The saved state (stage, stage_epochs_done, stage_complete, history), or None for a fresh run."""
        path = os.path.join(self.directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        state = self._read_state()
        saved = state.get("fingerprint")
        if saved != self.fingerprint:
            differences = fingerprint_differences(saved, self.fingerprint)
            shown = "; ".join(f"{name}: {_short(old)} in the checkpoint, {_short(new)} now"
                              for name, old, new in differences[:8])
            more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
            raise CheckpointMismatchError(
                f"`checkpoint_dir` holds a run started with different arguments: {shown}{more}. Resume with the "
                "same arguments, or use another directory for a new run. " + received("checkpoint_dir",
                                                                                     self.directory),
                differences)
        return state

    def restore(self, state: dict, model, optimizer=None) -> None:
        """Load the weights (and optimizer variables, when given and saved) of the checkpoint in `state`."""
        folder = os.path.join(self.directory, str(state.get("checkpoint")))
        weights_path = os.path.join(folder, "model.weights.h5")
        try:
            model.load_weights(weights_path)
        except Exception as error:  # h5py/keras errors of a truncated, corrupt or missing file
            raise self._unreadable(weights_path, error) from None
        opt_path = os.path.join(folder, "optimizer.npz")
        if optimizer is not None and os.path.exists(opt_path):
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            try:
                with np.load(opt_path) as saved:
                    values = [saved[f"v{i}"] for i in range(len(saved.files))]
            except Exception as error:  # zipfile/numpy errors of a truncated or corrupt file
                raise self._unreadable(opt_path, error) from None
            variables = optimizer.variables
            if len(values) != len(variables):
                raise CheckpointError(f"The checkpoint holds {len(values)} optimizer variables, the optimizer has "
                                      f"{len(variables)}. " + received("checkpoint_dir", self.directory))
            for variable, value in zip(variables, values):
                if tuple(value.shape) != tuple(variable.shape):
                    raise self._unreadable(opt_path, f"variable {variable.path} has shape {tuple(variable.shape)}, "
                                                     f"the file {tuple(value.shape)}")
                variable.assign(value)

    # -- writing ---------------------------------------------------------------------------------------------
    def save(self, state: dict, model, optimizer=None) -> None:
        """Write a checkpoint for `state` (without the bookkeeping keys) and make it the current one."""
        if not self.enabled:
            return
        previous = self._current_folder()
        index = (int(previous.split("-")[1]) + 1) if previous else 0
        name = f"ckpt-{index:05d}"
        tmp = os.path.join(self.directory, f".tmp-{uuid.uuid4().hex}")
        os.makedirs(tmp)
        model.save_weights(os.path.join(tmp, "model.weights.h5"))
        if optimizer is not None and optimizer.built:
            np.savez(os.path.join(tmp, "optimizer.npz"),
                     **{f"v{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
        final = os.path.join(self.directory, name)
        if os.path.exists(final):
            shutil.rmtree(final)
        os.replace(tmp, final)
        record = dict(state, checkpoint=name, fingerprint=self.fingerprint)
        state_tmp = os.path.join(self.directory, f".{STATE_FILE}.{uuid.uuid4().hex}")
        with open(state_tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, default=_to_json)
        os.replace(state_tmp, os.path.join(self.directory, STATE_FILE))  # the commit point
        if previous and previous != name:
            shutil.rmtree(os.path.join(self.directory, previous), ignore_errors=True)

    def _current_folder(self) -> str | None:
        if not os.path.exists(os.path.join(self.directory, STATE_FILE)):
            return None
        return self._read_state().get("checkpoint")

    def _read_state(self) -> dict:
        path = os.path.join(self.directory, STATE_FILE)
        try:
            with open(path, encoding="utf-8") as handle:
                state = json.load(handle)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise self._unreadable(path, error) from None
        keys = ("checkpoint", "stage", "stage_epochs_done", "stage_complete")
        missing = [key for key in keys if not isinstance(state, dict) or key not in state]
        if missing:
            raise self._unreadable(path, f"no {', '.join(missing)} in it")
        return state

    def _unreadable(self, path: str, error) -> CheckpointError:
        return CheckpointError(
            f"`checkpoint_dir` holds an unreadable checkpoint file {path!r} ({error}); it is truncated or corrupt. "
            "Delete the directory to start afresh, or use another one. " + received("checkpoint_dir",
                                                                                    self.directory))


def fingerprint_differences(saved, now, name: str = "") -> list:
    """(argument, saved value, current value) for each entry where two run fingerprints differ. Dicts are
    compared key by key and lists of dicts item by item (`stages[1].optimizer`); a run of one stage names
    its options plainly (`optimizer`)."""
    if isinstance(saved, dict) and isinstance(now, dict):
        out = []
        for key in sorted(set(saved) | set(now)):
            sub = f"{name}.{key}" if name else str(key)
            if key == "stages" and not name and _one_each(saved.get(key), now.get(key)):
                out += fingerprint_differences(saved[key][0], now[key][0], "")
            else:
                out += fingerprint_differences(saved.get(key, _MISSING), now.get(key, _MISSING), sub)
        return out
    if (isinstance(saved, list) and isinstance(now, list) and len(saved) == len(now)
            and any(isinstance(item, dict) for item in saved + now)):
        return [d for i, (a, b) in enumerate(zip(saved, now)) for d in fingerprint_differences(a, b, f"{name}[{i}]")]
    return [] if saved == now else [(name or "fingerprint", saved, now)]


def _one_each(a, b) -> bool:
    return isinstance(a, list) and isinstance(b, list) and len(a) == len(b) == 1


def _short(value, limit: int = 160) -> str:
    text = "absent" if value is _MISSING else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# -- what makes a run this run ---------------------------------------------------------------------------------


def model_fingerprint(model) -> dict:
    """The architecture, not the weights: layer classes and weight shapes (digest), layer and parameter counts.
    Layer names are left out: Keras numbers unnamed layers per process ("dense_3"), so they differ between runs."""
    layers = [(type(layer).__name__, [list(w.shape) for w in layer.weights]) for layer in all_layers(model)]
    return {"class": type(model).__name__, "layers": len(layers), "params": int(model.count_params()),
            "architecture": hashlib.sha1(repr(layers).encode()).hexdigest()[:16]}


def data_fingerprint(data, steps_per_epoch: int | None = None) -> dict:
    """Class names and counts, batch and image size, and the examples' fingerprint (`ImageData.fingerprint`: the
    file list or an array sample); for a bare tf.data.Dataset its element spec; for arrays a sample digest."""
    from cnnzoo.data.imagedata import ImageData, arrays_fingerprint

    out = {"steps_per_epoch": steps_per_epoch}
    if isinstance(data, ImageData):
        out.update(class_names=[str(c) for c in data.class_names],
                   class_counts={str(k): int(v) for k, v in (data.class_counts or {}).items()},
                   examples=data.fingerprint, batch_size=data.batch_size, sampling=data.sampling,
                   image_size=[int(v) for v in data.image_size or ()])
    elif isinstance(data, (tuple, list)) and data and all(hasattr(v, "shape") for v in data):
        out["examples"] = arrays_fingerprint(*[np.asarray(v) for v in data])
    elif hasattr(data, "element_spec"):
        out["element_spec"] = str(data.element_spec)
    else:
        out["data"] = describe(data)
    return out


def describe(value):
    """A JSON-able description of an argument (optimizers, schedules and layers by class and config, without
    Keras' per-process names), equal for equal settings in another process."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, (keras.optimizers.Optimizer, keras.optimizers.schedules.LearningRateSchedule,
                          keras.layers.Layer, keras.losses.Loss)):
        try:
            config = {k: v for k, v in value.get_config().items() if k != "name"}
        except NotImplementedError:
            config = {}
        out = {"class": type(value).__name__, "config": describe(config)}
        steps = getattr(value, "steps", None)   # cnnzoo's Augmentation: each step's own settings
        if isinstance(steps, list) and all(isinstance(step, keras.layers.Layer) for step in steps):
            out["steps"] = describe(steps)
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"class": type(value).__name__, **describe(dataclasses.asdict(value))}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return type(value).__name__


def _to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
