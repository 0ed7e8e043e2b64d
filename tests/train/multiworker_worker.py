"""Run by test_distribute.py: one worker of a two-process MultiWorkerMirroredStrategy cluster on 127.0.0.1."""
import json
import os

from cnnzoo.train.distribute import get_strategy

strategy = get_strategy("multiworker")  # before any other TensorFlow work in the process

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cnnzoo.train import fit  # noqa: E402
from traintools import digits_arrays, make_data, tiny_cnn  # noqa: E402

index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
keras.utils.set_random_seed(100 + index)  # each worker starts from other weights: the chief's must win
x, y = digits_arrays(32)
data = make_data(x[:512], y[:512], batch_size=64, seed=0)
model = tiny_cnn(width=8)
np.savez(os.path.join(os.environ["OUT"], f"init{index}.npz"), *model.get_weights())
result = fit(model, data, epochs=3, learning_rate=3e-3, strategy=strategy, verbose=0)
np.savez(os.path.join(os.environ["OUT"], f"final{index}.npz"), *result.model.get_weights())
with open(os.path.join(os.environ["OUT"], f"history{index}.json"), "w") as handle:
    json.dump(result.history, handle)
