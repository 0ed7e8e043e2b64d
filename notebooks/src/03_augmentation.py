# %% [markdown]
# # 03 · Augmentation policies
# Augmentation lives in the input pipeline, never in the model that is saved or exported. `cnnzoo.data`
# offers four named policies ("none", "light", "standard", "heavy"), lists of steps, and batch-level MixUp
# and CutMix with soft labels; geometric steps are fused into one resampling, which is what makes them faster
# than stacking Keras's own layers (see `benchmarks/`).

# %%
#SETUP
from skimage import data as skdata
import keras

photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]
size = 96 if QUICK else 160
images = np.stack([np.asarray(keras.ops.image.resize(p.astype("float32"), (size, size))).astype("uint8")
                   for p in photos])
labels = np.arange(len(photos))
data = cnnzoo.data.from_arrays(np.repeat(images, 4, axis=0), np.repeat(labels, 4),
                               class_names=["astronaut", "cat", "coffee", "rocket"], batch_size=16,
                               validation_split=0.25, seed=0)
data

# %% [markdown]
# ## The policies, before and after
# Each original is followed by its augmented copy.

# %%
for policy in ("light", "standard", "heavy"):
    fig = cnnzoo.data.show_batch(data, n=4, augment=policy, seed=1, size=1.6)
    fig.suptitle(f'policy "{policy}"', y=1.04)

# %% [markdown]
# ## A custom list of steps
# Names with options, or any Keras layer.

# %%
steps = ["flip", ("rotation", {"factor": 0.1}), ("zoom", {"factor": 0.2}), "color_jitter",
         keras.layers.RandomContrast(0.3)]
fig = cnnzoo.data.show_batch(data, n=4, augment=steps, seed=2, size=1.6)

# %% [markdown]
# ## MixUp and CutMix
# Applied on whole batches in the tf.data pipeline; labels become soft one-hot vectors (shown as "cat 0.70 /
# rocket 0.30").

# %%
mixed = cnnzoo.data.augment_dataset(data, "none", mixup=0.4, seed=0)
fig = cnnzoo.data.show_batch(mixed, n=6, class_names=data.class_names, size=1.8)
cut = cnnzoo.data.augment_dataset(data, "none", cutmix=1.0, seed=0)
fig = cnnzoo.data.show_batch(cut, n=6, class_names=data.class_names, size=1.8)
