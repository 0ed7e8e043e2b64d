"""Run by test_checkpoints.py in a subprocess: a two-stage finetune with checkpoints that the test kills."""
import json
import os
import sys
import time

import keras
import numpy as np

from cnnzoo.train import Stage, finetune
from traintools import TINY_GROUPS, digits_arrays, make_data, tiny_cnn

CKPT, EVENTS, OUT = os.environ["CKPT"], os.environ["EVENTS"], os.environ["OUT"]
KILL_AT = int(os.environ.get("KILL_AT", "-1"))
MARKER = os.environ.get("MARKER", "")


class EventLog(keras.callbacks.Callback):
    def _log(self, text):
        with open(EVENTS, "a") as handle:
            handle.write(text + "\n")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._log(f"begin {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self._log(f"end {epoch}")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == KILL_AT and batch == 1:
            open(MARKER, "w").close()  # mid-epoch: tell the test to kill us now
            time.sleep(600)


keras.utils.set_random_seed(0)
x, y = digits_arrays(32)
data = make_data(x[:256], y[:256], batch_size=64)
result = finetune(tiny_cnn(), data, groups=TINY_GROUPS, augment=None, verbose=0, callbacks=[EventLog()],
                  checkpoint_dir=CKPT, stages=[Stage("head", epochs=1, learning_rate=1e-2),
                                               Stage("all", epochs=3, learning_rate=3e-3, train_bn=True)])
with open(OUT, "w") as handle:
    json.dump({"epoch": result.history["epoch"], "stage": result.history["stage"],
               "loss": result.history["loss"], "iterations": int(result.model.optimizer.iterations)}, handle)
np.savez(OUT + ".npz", *result.model.get_weights())
sys.exit(0)
