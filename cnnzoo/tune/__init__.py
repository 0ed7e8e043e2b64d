"""Hyperparameter search with KerasTuner over the zoo (architecture, width, unfrozen depth) and the recipe.

`cnnzoo.tune.search(data, ...)` (also `cnnzoo.tune(data, ...)`) runs a whole search and returns a `TuneResult`
(best model, best hyperparameters, leaderboard). `CnnZooHyperModel` is the search space as a KerasTuner
HyperModel, for use with any KerasTuner tuner.

Example:
    >>> result = cnnzoo.tune.search(data, models=("mobilenet_v2", "resnet18"), tuner="hyperband", epochs=9)
    >>> result.best_hyperparameters.values
    >>> result.leaderboard.head()
"""
from cnnzoo._callable import make_module_callable
from cnnzoo.tune.hypermodel import CnnZooHyperModel
from cnnzoo.tune.leaderboard import load_leaderboard
from cnnzoo.tune.search import TUNERS, TuneResult, search
from cnnzoo.tune.space import DEFAULT_MODELS, PARAMS, parse_space

__all__ = ["search", "TuneResult", "CnnZooHyperModel", "load_leaderboard", "parse_space", "PARAMS", "DEFAULT_MODELS",
           "TUNERS"]

make_module_callable(__name__, search)
