"""Per-epoch checkpoints (model weights, optimizer state, stage and epoch) and resume after a crash.

Layout of `checkpoint_dir`: `ckpt-00007/` holds `model.weights.h5` and `optimizer.npz`; `state.json` names the
newest complete one and records the stage, the epochs done and the history so far. A checkpoint is written in a
fresh folder and `state.json` is replaced atomically afterwards, so a process killed at any moment leaves the
previous checkpoint intact. A run restarted with the same arguments continues after the last completed epoch;
different arguments raise an error rather than mix two runs. Not saved: early-stopping and reduce-on-plateau
counters (they restart with the resumed stage) and the data order within an epoch. In a multi-worker run the
chief writes, and every worker reads, so `checkpoint_dir` must be storage all workers share.

Example:
    >>> cnnzoo.finetune(model, data, checkpoint_dir="runs/flowers")   # kill it, run it again: it resumes
"""
from __future__ import annotations

import json
import os
import shutil
import uuid

import numpy as np

from cnnzoo._checks import received

__all__ = ["Checkpointer"]

STATE_FILE = "state.json"


class Checkpointer:
    """Saves and restores a run's checkpoints in `directory`.

    `fingerprint` is a JSON-able description of the run's arguments; resuming with another one is refused.
    `enabled=False` (a non-chief worker) makes `save` a no-op while `load_state` still reads.
    """

    def __init__(self, directory: str, fingerprint: dict, *, enabled: bool = True):
        if not isinstance(directory, (str, os.PathLike)):
            raise TypeError("`checkpoint_dir` must be a path. " + received("checkpoint_dir", directory))
        self.directory = os.fspath(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.enabled = enabled
        if enabled:
            os.makedirs(self.directory, exist_ok=True)
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
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        if state.get("fingerprint") != self.fingerprint:
            raise ValueError(
                "`checkpoint_dir` holds a run started with different arguments; resume with the same arguments "
                "or use another directory. Saved: " + json.dumps(state.get("fingerprint"), sort_keys=True)
                + ", now: " + json.dumps(self.fingerprint, sort_keys=True) + ". "
                + received("checkpoint_dir", self.directory))
        return state

    def restore(self, state: dict, model, optimizer=None) -> None:
        """Load the weights (and optimizer variables, when given and saved) of the checkpoint in `state`."""
        folder = os.path.join(self.directory, state["checkpoint"])
        model.load_weights(os.path.join(folder, "model.weights.h5"))
        opt_path = os.path.join(folder, "optimizer.npz")
        if optimizer is not None and os.path.exists(opt_path):
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
            with np.load(opt_path) as saved:
                values = [saved[f"v{i}"] for i in range(len(saved.files))]
            variables = optimizer.variables
            if len(values) != len(variables):
                raise ValueError(f"The checkpoint holds {len(values)} optimizer variables, the optimizer has "
                                 f"{len(variables)}. " + received("checkpoint_dir", self.directory))
            for variable, value in zip(variables, values):
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
        path = os.path.join(self.directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle).get("checkpoint")


def _to_json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
