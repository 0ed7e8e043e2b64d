"""`search`: hyperparameter search over the zoo and the recipe in one call, on KerasTuner's tuners.

What `search` adds to a bare KerasTuner tuner:
- the space (`CnnZooHyperModel`), trained with cnnzoo's recipe and early stopping inside each trial;
- resume: `overwrite=False` continues an interrupted search in `directory/project_name` (finished trials are
  kept, the interrupted one runs again, new ones follow); settings that would make old and new trials
  incomparable (tuner, objective, epochs, space, ...) must match, or `search` refuses;
- a leaderboard (pandas, best first; also `leaderboard.csv` / `leaderboard.md` in the project directory) with
  each trial's tuner id, epochs trained and wall time;
- distributed tuning through KerasTuner's chief/worker protocol. Start the same script on every machine with
  a shared `directory` and the environment variables
      KERASTUNER_TUNER_ID      "chief" on one machine, a distinct id ("worker0", "worker1", ...) on the others
      KERASTUNER_ORACLE_IP     the chief's address (the chief listens on it)
      KERASTUNER_ORACLE_PORT   a free port on the chief
  The chief hosts the oracle; unlike a bare KerasTuner chief it also runs trials (`chief_trials=True`), so
  a chief and one worker run two trials at a time. The chief returns when every trial is done and writes
  the leaderboard; a worker returns when the oracle has no more trials for it.

Example:
    >>> result = cnnzoo.tune.search(data, models=("mobilenet_v2", "resnet18"), tuner="bayesian",
    ...                             max_trials=20, epochs=10, space={"augment": ["light", "standard"]})
    >>> result.best_hyperparameters.get("learning_rate")
    >>> result.leaderboard.head()
"""
from __future__ import annotations

import functools
import json
import os
import time
import warnings

import keras
import keras_tuner

from cnnzoo._checks import check_choice, check_int, received
from cnnzoo.data.imagedata import ImageData
from cnnzoo.tune import leaderboard as board
from cnnzoo.tune.hypermodel import CnnZooHyperModel
from cnnzoo.tune.space import DEFAULT_MODELS
from cnnzoo.options import TUNERS  # defined once, for the CLI too

__all__ = ["search", "TuneResult", "TUNERS"]

_DEFAULT_MAX_TRIALS = 10


# --------------------------------------------------------------------------------------------------------------
# distributed tuning: KerasTuner's environment protocol


def _has_chief() -> bool:
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle()


def is_chief() -> bool:
    """True in the process that hosts the oracle of a distributed search (KERASTUNER_TUNER_ID contains "chief")."""
    from keras_tuner.src.distribute import utils

    return utils.is_chief_oracle()


def is_worker() -> bool:
    """True in a worker of a distributed search (the chief's address is set and this is not the chief)."""
    return _has_chief() and not is_chief()


class _OracleServer:
    """KerasTuner's gRPC oracle service, served from a thread so the chief's main thread can run trials.

    `keras_tuner`'s own `start_server` blocks its caller and, once a worker has been told to stop, polls every
    20 s for the last trials; this serves the same `OracleServicer` and polls every half second.
    """

    def __init__(self, oracle):
        import grpc
        from concurrent import futures
        from keras_tuner.src import protos
        from keras_tuner.src.distribute import oracle_chief

        self.oracle = oracle
        self._exit_ready = oracle_chief.exit_chief
        self.servicer = oracle_chief.OracleServicer(oracle)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError:
            port = 0
        if not port:
            raise RuntimeError(f"The chief cannot listen on {address} (port in use?); set KERASTUNER_ORACLE_PORT "
                               f"to a free port. Received: KERASTUNER_ORACLE_PORT="
                               f"{os.environ['KERASTUNER_ORACLE_PORT']!r}")
        self.server.start()

    def wait(self, poll: float = 0.5) -> None:
        """Block until a worker has been told to stop and no trial is running or waiting to be handed out."""
        while not (self.servicer.stop_triggered and self._exit_ready(self.oracle)):
            time.sleep(poll)

    def stop(self) -> None:
        self.server.stop(grace=1.0)


# --------------------------------------------------------------------------------------------------------------
# the tuners


class _EpochCounter(keras.callbacks.Callback):
    def __init__(self, tuner):
        super().__init__()
        self.tuner = tuner

    def on_epoch_end(self, epoch, logs=None):
        self.tuner._epochs_this_run += 1


def _call_with(oracle, function):
    return function()


class _CnnZooTuner:
    """Mixed into a KerasTuner tuner: the run log (tuner id, epochs, wall time per trial), a thread-safe save
    for a chief that serves and trains at once, and the chief that runs trials."""

    def __init__(self, *args, chief_trials: bool = True, **kwargs):
        self.chief_trials = chief_trials
        self._epochs_this_run = 0
        super().__init__(*args, **kwargs)

    def _populate_initial_space(self):
        # A CnnZooHyperModel declares its whole space, conditions included: no model needs building for it.
        if isinstance(self.hypermodel, CnnZooHyperModel):
            hp = self.oracle.get_space()
            self.hypermodel.declare_hyperparameters(hp)
            self.oracle.update_space(hp)
            return
        super()._populate_initial_space()

    def run_trial(self, trial, *args, **kwargs):
        self._epochs_this_run = 0
        start, status = time.time(), "interrupted"
        try:
            results = super().run_trial(trial, *args, **kwargs)
            status = "completed"
            return results
        except Exception:
            status = "failed"
            raise
        finally:
            board.append_run(self.project_dir, {
                "trial_id": trial.trial_id, "tuner_id": self.tuner_id, "status": status,
                "epochs": self._epochs_this_run, "seconds": round(time.time() - start, 3),
                "ended": time.strftime("%Y-%m-%dT%H:%M:%S")})

    def _build_and_fit_model(self, trial, *args, **kwargs):
        # Added after KerasTuner deep-copies the callbacks, so the count lands on this tuner.
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), _EpochCounter(self)]
        return super()._build_and_fit_model(trial, *args, **kwargs)

    def save(self):
        # The chief's oracle service thread saves the oracle too; take the oracle's own lock.
        keras_tuner.synchronized(_call_with)(self.oracle, super().save)

    def search(self, *fit_args, **fit_kwargs):
        if not (self.chief_trials and is_chief()):
            return super().search(*fit_args, **fit_kwargs)
        from keras_tuner.engine.trial import TrialStatus

        if "verbose" in fit_kwargs:
            self.oracle.verbose = fit_kwargs["verbose"]
        self.save()
        server = _OracleServer(self.oracle)
        try:
            # The worker loop of keras_tuner's BaseTuner.search, run by the chief next to the service.
            self.on_search_begin()
            while True:
                self.pre_create_trial()
                trial = self.oracle.create_trial(self.tuner_id)
                if trial.status == TrialStatus.STOPPED:
                    break
                if trial.status == TrialStatus.IDLE:
                    time.sleep(1.0)  # Hyperband waits for other workers' trials
                    continue
                self.on_trial_begin(trial)
                self._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
                self.on_trial_end(trial)
            self.on_search_end()
            server.wait()
        finally:
            server.stop()


@functools.lru_cache(maxsize=None)
def _tuner_class(kind: str):
    base = {"hyperband": keras_tuner.Hyperband, "bayesian": keras_tuner.BayesianOptimization,
            "random": keras_tuner.RandomSearch}[kind]
    return type(f"CnnZoo{base.__name__}", (_CnnZooTuner, base), {})


def make_tuner(kind: str, hypermodel, *, objective="val_accuracy", max_trials=None, epochs: int = 10, seed=0,
               directory="cnnzoo_tune", project_name="search", overwrite=False, executions_per_trial: int = 1,
               tuner_options=None, chief_trials: bool = True):
    """The KerasTuner tuner `search` runs: "hyperband" (max_epochs=epochs), "bayesian" or "random".

    `max_trials` caps Hyperband too (None: its full bracket schedule); `tuner_options` go to the KerasTuner
    class (e.g. {"factor": 3, "hyperband_iterations": 2} or {"num_initial_points": 4}).
    """
    check_choice("tuner", kind, TUNERS)
    options = dict(tuner_options or {})
    common = dict(objective=objective, seed=seed, directory=os.fspath(directory), project_name=project_name,
                  overwrite=overwrite, executions_per_trial=executions_per_trial, chief_trials=chief_trials)
    cls = _tuner_class(kind)
    if kind == "hyperband":
        tuner = cls(hypermodel, max_epochs=epochs, **common, **options)
        if max_trials is not None:
            tuner.oracle.max_trials = max_trials
        return tuner
    return cls(hypermodel, max_trials=max_trials or _DEFAULT_MAX_TRIALS, **common, **options)


# --------------------------------------------------------------------------------------------------------------
# the result


class TuneResult:
    """What `search` returns.

    Attributes:
        best_hyperparameters: keras_tuner.HyperParameters of the best trial (`.get("learning_rate")`, `.values`).
        best_model: the best trial's model restored from its best-epoch checkpoint (loaded on first access),
            or, with `search(refit=True)`, that configuration rebuilt and trained on the data.
        leaderboard: pandas DataFrame, one row per trial, best first: trial_id, status, tuner_id, every
            hyperparameter, objective, epochs, seconds.
        objective / direction: the metric searched and "max" or "min".
        paths: {"csv": ..., "markdown": ...} leaderboard files (empty in a worker).
        tuner, hypermodel: the KerasTuner tuner and the CnnZooHyperModel.

    Example:
        >>> result.best_model.evaluate(data.val)
    """

    def __init__(self, *, tuner, hypermodel, leaderboard, trials, objective, direction, paths, refit_model=None):
        self.tuner = tuner
        self.hypermodel = hypermodel
        self.leaderboard = leaderboard
        self.objective = objective
        self.direction = direction
        self.paths = paths
        self._trials = trials
        self._refit_model = refit_model

    @property
    def best_trial(self):
        done = self.leaderboard[self.leaderboard["objective"].notna()]
        if done.empty:
            raise RuntimeError("No trial of this search completed; see the leaderboard's status column and "
                               "the trial.json messages in the project directory.")
        return self._trials[done.iloc[0]["trial_id"]]

    @property
    def best_hyperparameters(self):
        return self.best_trial.hyperparameters

    @functools.cached_property
    def best_model(self) -> keras.Model:
        if self._refit_model is not None:
            return self._refit_model
        trial = self.best_trial
        checkpoint = self.tuner._get_checkpoint_fname(trial.trial_id)
        if not os.path.exists(checkpoint):
            raise RuntimeError(f"The best trial's checkpoint {checkpoint!r} is missing (a distributed search needs "
                               "a directory shared by all workers); use search(refit=True) to retrain instead.")
        with warnings.catch_warnings():
            # The checkpoint also holds the trial's optimizer state, which a restored model does not need.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return self.tuner.load_model(trial)

    def __repr__(self):
        done = int(self.leaderboard["objective"].notna().sum()) if len(self.leaderboard) else 0
        best = self.leaderboard["objective"].iloc[0] if done else None
        return (f"TuneResult(trials={len(self.leaderboard)}, completed={done}, objective={self.objective!r}, "
                f"best={best})")


# --------------------------------------------------------------------------------------------------------------
# search


def _check_settings(project_dir: str, settings: dict) -> None:
    """Refuse to resume a search whose earlier trials were run under other settings."""
    old = board.read_settings(project_dir)
    if old is None:
        return
    new = json.loads(json.dumps(settings, default=str))
    for key in sorted(new):  # `direction` is recorded after the tuner exists, not compared
        if old.get(key) != new.get(key):
            raise ValueError(f"{project_dir!r} holds a search run with other settings ({key}: {old.get(key)!r}); "
                             "resume it with the same arguments, or pass overwrite=True or another project_name. "
                             f"Received: {key}={new.get(key)!r}")


def _write_settings(project_dir: str, settings: dict) -> None:
    os.makedirs(project_dir, exist_ok=True)
    with open(os.path.join(project_dir, board.SETTINGS), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=1, sort_keys=True, default=str)


def search(data, *, models=DEFAULT_MODELS, tuner: str = "hyperband", max_trials: int | None = None,
           epochs: int = 10, objective="val_accuracy", directory="cnnzoo_tune", project_name: str = "search",
           overwrite: bool = False, seed: int | None = 0, space: dict | None = None, weights: str | None = None,
           early_stopping: int | None = 3, refit: bool = False, executions_per_trial: int = 1,
           tuner_options: dict | None = None, chief_trials: bool = True, callbacks=None,
           verbose="auto") -> TuneResult:
    """Search architectures and training recipes on `data`; returns the best model and a leaderboard.

    Args:
        data: ImageData with a validation stream (`.val`): the objective is measured on it.
        models: model names to choose from ("mobilenet_v2" tunes its width alpha, "efficientnet" its phi).
        tuner: "hyperband" (successive halving over `epochs`), "bayesian" (Gaussian process) or "random".
        max_trials: int; None means 10 for "bayesian"/"random" and the full schedule for "hyperband".
        epochs: int, epochs per trial (Hyperband's largest budget). Early stopping may end a trial sooner.
        objective: "val_accuracy" (default), "val_loss" or a keras_tuner.Objective.
        directory, project_name: where trials, checkpoints and the leaderboard are kept.
        overwrite: False continues an existing search there (finished trials are not run again); True starts
            afresh. Workers of a distributed search never delete the shared directory.
        seed: int or None; fixes the tuner's sampling, weight initialisation and augmentation.
        space: dict fixing or narrowing hyperparameters: {"learning_rate": 3e-3} (fixed), [1e-4, 3e-3]
            (choices), (1e-5, 1e-2) (log range). Names: `cnnzoo.tune.space.SPACE_KEYS`; the candidate models
            come from `models=` only (a "model" key, or any other argument of `search`, is refused).
        weights: None (from scratch), "imagenet" or a file: pretrained backbones; `unfreeze` is then tuned.
        early_stopping: int patience (epochs) inside each trial, or None.
        refit: False restores the best trial's best-epoch checkpoint as `best_model`; True rebuilds the best
            configuration and trains it for `epochs` on `data`.
        executions_per_trial: int, trainings averaged per trial.
        tuner_options: extra keyword arguments for the KerasTuner tuner class (e.g. {"factor": 3}).
        chief_trials: in a distributed search, whether the chief runs trials besides hosting the oracle.
        callbacks: extra keras callbacks for every trial (copied per trial). verbose: 0, 1, 2 or "auto".

    Returns:
        TuneResult(.best_model, .best_hyperparameters, .leaderboard, .paths, .tuner).

    Example:
        >>> result = cnnzoo.tune.search(data, models=("resnet18",), tuner="random", max_trials=4, epochs=3,
        ...                             space={"learning_rate": [1e-4, 3e-3], "augment": "light"})
        >>> result.best_hyperparameters.get("learning_rate"), result.leaderboard
    """
    if not isinstance(data, ImageData):
        raise TypeError(f"`data` must be an ImageData (cnnzoo.data.from_directory / from_arrays / from_tfds). "
                        f"{received('data', type(data).__name__)}")
    check_choice("tuner", tuner, TUNERS)
    check_int("epochs", epochs, minimum=1)
    if max_trials is not None:
        check_int("max_trials", max_trials, minimum=1)
    check_int("executions_per_trial", executions_per_trial, minimum=1)
    check_choice("verbose", verbose, (0, 1, 2, "auto"))
    if not isinstance(project_name, str) or not project_name or os.sep in project_name:
        raise ValueError(f"`project_name` must be a non-empty folder name. {received('project_name', project_name)}")
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"`directory` must be a path. {received('directory', directory)}")
    if tuner_options is not None and not isinstance(tuner_options, dict):
        raise TypeError(f"`tuner_options` must be a dict. {received('tuner_options', tuner_options)}")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"`callbacks` must be a list of keras callbacks. {received('callbacks', callbacks)}")
    objective_name = getattr(objective, "name", objective)
    if isinstance(objective_name, str) and objective_name.startswith("val_") and data.val is None:
        raise ValueError("The objective is measured on validation data, but `data.val` is None; build the data "
                         f"with a validation_split > 0. Received: objective={objective_name!r}")

    hypermodel = CnnZooHyperModel.from_data(data, models=models, space=space, weights=weights, objective=objective,
                                            early_stopping=early_stopping, seed=seed)
    worker = is_worker()
    project_dir = os.path.join(os.fspath(directory), project_name)
    settings = {"tuner": tuner, "objective": objective_name, "epochs": epochs, "seed": seed,
                "weights": weights, "early_stopping": early_stopping, "executions_per_trial": executions_per_trial,
                "tuner_options": tuner_options or {}, "num_classes": data.num_classes,
                "image_size": list(data.image_size),
                "space": {name: {k: v for k, v in vars(spec).items() if v not in (None, ())}
                          for name, spec in hypermodel.specs.items()}}
    if worker:
        overwrite = False  # the directory is shared with the chief: never wipe it from a worker
    elif not overwrite:
        _check_settings(project_dir, settings)

    kt_tuner = make_tuner(tuner, hypermodel, objective=objective, max_trials=max_trials, epochs=epochs, seed=seed,
                          directory=directory, project_name=project_name, overwrite=overwrite,
                          executions_per_trial=executions_per_trial, tuner_options=tuner_options,
                          chief_trials=chief_trials)
    direction = kt_tuner.oracle.objective.direction
    if not worker:
        _write_settings(project_dir, dict(settings, direction=direction))
    kt_tuner.search(data, epochs=epochs, callbacks=list(callbacks or []), verbose=verbose)

    trials = board.load_trials(project_dir) if worker else list(kt_tuner.oracle.trials.values())
    frame = board.build_leaderboard(trials, direction=direction, runs=board.read_runs(project_dir))
    paths = {} if worker else board.write_leaderboard(frame, project_dir, objective=objective_name,
                                                      direction=direction)
    result = TuneResult(tuner=kt_tuner, hypermodel=hypermodel, leaderboard=frame,
                        trials={t.trial_id: t for t in trials}, objective=objective_name, direction=direction,
                        paths=paths)
    if refit and not worker:
        trained = hypermodel.build_and_train(result.best_hyperparameters, data, epochs=epochs,
                                             callbacks=list(callbacks or []), verbose=verbose)
        result._refit_model = trained.model
    return result

