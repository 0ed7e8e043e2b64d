# %% [markdown]
# # 05 · Hyperparameter search with KerasTuner
# `cnnzoo.tune.search` searches the zoo (architecture, MobileNetV2 width, EfficientNet phi) and the training
# recipe (learning rate, weight decay, dropout, label smoothing, batch size, augmentation) with KerasTuner's
# Hyperband, Bayesian or random search, and returns the best model and a leaderboard.

# %%
#SETUP
import tempfile
from cnnzoo.data.bundled import digits_rgb

x, y, names = digits_rgb(32)
if QUICK:
    x, y = x[:400], y[:400]
data = cnnzoo.data.from_arrays(x, y, class_names=names, image_size=(32, 32), batch_size=32, seed=0)
directory = tempfile.mkdtemp()

# %% [markdown]
# A small space: two architectures, a learning-rate range, dropout choices. Anything not named keeps its
# default range; a scalar fixes a value, a list gives choices, a tuple a (log) range.

# %%
result = cnnzoo.tune.search(
    data, models=("resnet18", "mobilenet_v2_035"), tuner="random", max_trials=2 if QUICK else 6,
    epochs=1 if QUICK else 4, directory=directory, seed=0,
    space={"learning_rate": (1e-4, 1e-2), "dropout": [0.0, 0.2], "batch_size": 32, "augment": "none"},
    verbose=0)
result.leaderboard

# %%
best = result.best_hyperparameters
print({k: best.get(k) for k in ("model", "learning_rate", "dropout") if k in best.values})
print("best model val accuracy:", round(cnnzoo.evaluate(result.best_model, data).accuracy, 4))

# %%
board = result.leaderboard
fig, ax = plt.subplots(figsize=(6, 3.5))
for model_name, group in board.groupby("model"):
    ax.scatter(group["learning_rate"], group["objective"], label=model_name, s=60)
ax.set_xscale("log"); ax.set_xlabel("learning rate"); ax.set_ylabel("val accuracy"); ax.legend()
ax.set_title("trials")

# %% [markdown]
# Rerunning `search` with the same `directory` resumes: finished trials are not run again. For several
# machines, start the same script with `KERASTUNER_TUNER_ID=chief` on one and `worker0`, `worker1`, ... on the
# others, all pointing at the chief through `KERASTUNER_ORACLE_IP` / `KERASTUNER_ORACLE_PORT`.
