"""Training and fine-tuning recipes: `fit`, `finetune` with `Stage`, schedules, `lr_find`, BatchNorm
recalibration, mixed precision, distribution strategies and resumable checkpoints.

Example:
    >>> result = cnnzoo.finetune(model, data, stages=[cnnzoo.Stage("head", epochs=2),
    ...                                               cnnzoo.Stage(3, epochs=4, learning_rate=3e-4)])
"""
from cnnzoo.train import schedules
from cnnzoo.train._model import replace_head
from cnnzoo.train.batchnorm import recalibrate_bn
from cnnzoo.train.checkpoints import CheckpointError, Checkpointer, CheckpointMismatchError
from cnnzoo.train.distill import distill
from cnnzoo.train.distribute import get_strategy
from cnnzoo.train.finetune import DEFAULT_MULTIPLIERS, FineTuneResult, Stage, default_stages, finetune
from cnnzoo.train.fit import FitResult, fit, make_loss
from cnnzoo.train.lr_find import LRFinderResult, lr_find
from cnnzoo.train.optimizers import make_optimizer
from cnnzoo.train.precision import resolve_policy

__all__ = ["fit", "FitResult", "distill", "finetune", "Stage", "FineTuneResult", "default_stages", "DEFAULT_MULTIPLIERS",
           "lr_find", "LRFinderResult", "schedules", "recalibrate_bn", "replace_head", "make_optimizer",
           "make_loss", "resolve_policy", "get_strategy", "Checkpointer", "CheckpointError", "CheckpointMismatchError"]
