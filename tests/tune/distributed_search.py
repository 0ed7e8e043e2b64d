"""One process of a distributed search, chief or worker by KERASTUNER_TUNER_ID (run by test_distributed).

Usage: python distributed_search.py DIRECTORY
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

import cnnzoo  # noqa: E402
from tunetools import FIXED_RECIPE, color_data  # noqa: E402

# Trials of three steps: eager execution is faster than tracing a ResNet for them.
tf.config.run_functions_eagerly(True)

result = cnnzoo.tune.search(color_data(48, batch_size=12), models=("resnet18",), tuner="random", max_trials=2,
                            epochs=1, directory=sys.argv[1], project_name="distributed", seed=0,
                            space=dict(FIXED_RECIPE, learning_rate=[1e-3, 3e-3]), verbose=0)
print("finished", os.environ["KERASTUNER_TUNER_ID"], len(result.leaderboard), flush=True)
