# %% [markdown]
# # 04 · Transfer learning, the recipe
# Real data shipped with scikit-learn: pretrain a small zoo model on digits 0-4, then fine-tune it on digits
# 5-9 with only 10 labelled images per class. The same architecture trained from scratch on those 50 images
# does far worse (`benchmarks/bench_finetune.py` measures it over seeds: 46.9 % against 26.8 %). Then:
# training curves, confusion matrix, calibration (ECE, reliability diagram, temperature scaling) and Grad-CAM.
#
# Offline there are no ImageNet weights, so the "pretrained" backbone is our own digits 0-4 model; online,
# `cnnzoo.create_model(name, weights="imagenet")` is the usual start.

# %%
#SETUP
from cnnzoo.data.bundled import digits_rgb

SIZE, NAME = 32, "mobilenet_v2_035"   # ResNet-18 learns these digits from 50 images anyway: no contrast
x, y, _ = digits_rgb(SIZE)
low, high = np.flatnonzero(y < 5), np.flatnonzero(y >= 5)
rng = np.random.default_rng(0)
few = np.concatenate([rng.choice(high[y[high] == d], 10, replace=False) for d in range(5, 10)])
held_out = np.setdiff1d(high, few)
names = [str(d) for d in range(5, 10)]
source = cnnzoo.data.from_arrays(x[low], y[low], batch_size=64, validation_split=0.1, seed=0)
shots = cnnzoo.data.from_arrays(x[few], y[few] - 5, class_names=names, batch_size=10, validation_split=0.0, seed=0)
calib_idx, test_idx = held_out[::4], np.setdiff1d(held_out, held_out[::4])   # 1/4 for temperature scaling
test = (x[test_idx], y[test_idx] - 5)
print(f"pretrain on {len(low)} images of 0-4; fine-tune on {len(few)} of 5-9; test on {len(test_idx)}")

# %% [markdown]
# ## 1. Pretrain on digits 0-4

# %%
import keras

keras.utils.set_random_seed(0)
pretrained = cnnzoo.create_model(NAME, num_classes=5, input_shape=(SIZE, SIZE, 3))
cnnzoo.train.fit(pretrained, source, epochs=3 if QUICK else 10, learning_rate=1e-2, verbose=0)
print("digits 0-4 held-out accuracy:", round(cnnzoo.evaluate(pretrained, source).accuracy, 4))

# %% [markdown]
# ## 2. Fine-tune on 10 images per class of digits 5-9
# Stage 1 trains a fresh head on the frozen backbone (BatchNorm in inference mode); stage 2 unfreezes the head
# and the top two groups with discriminative learning rates (head 1x, last stage 0.3x, earlier 0.1x).

# %%
stages = [cnnzoo.Stage("head", epochs=2 if QUICK else 3, learning_rate=1e-2),
          cnnzoo.Stage(3, epochs=2 if QUICK else 5, learning_rate=3e-3)]
tuned = cnnzoo.finetune(pretrained, shots, stages=stages, head="new", augment=None, verbose=0, seed=0)
keras.utils.set_random_seed(0)
scratch_model = cnnzoo.create_model(NAME, num_classes=5, input_shape=(SIZE, SIZE, 3))
scratch = cnnzoo.train.fit(scratch_model, shots, epochs=sum(s.epochs for s in stages), learning_rate=3e-3,
                           verbose=0)
report = cnnzoo.evaluate(tuned.model, test, class_names=names)
print(f"held-out 5-9 accuracy: fine-tuned {report.accuracy:.3f}, "
      f"from scratch {cnnzoo.evaluate(scratch.model, test).accuracy:.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(tuned.history["accuracy"], label="fine-tune (stage 1, then 2)")
ax.plot(scratch.history["accuracy"], label="from scratch")
ax.set_xlabel("epoch"); ax.set_ylabel("training accuracy"); ax.legend()
fig

# %% [markdown]
# ## 3. Where does it fail, and can we trust its confidence?

# %%
print(report.per_class)
report.plot_confusion_matrix()

# %%
fig = report.plot_reliability()
print(f"ECE {report.ece:.3f}")
fig

# %% [markdown]
# Temperature scaling fits one temperature on held-out validation outputs (a quarter of the unused 5-9 images,
# kept apart from the test images) and reports ECE before and after on the test images.

# %%
calibration = report.calibrate((x[calib_idx], y[calib_idx] - 5))
print(f"temperature {calibration.temperature:.2f}: ECE {calibration.ece_before:.3f} -> {calibration.ece_after:.3f}")

# %% [markdown]
# ## 4. Grad-CAM: what the model looks at
# At 32 px the last stage's map is 1x1 (output stride 32), so its Grad-CAM is flat; an earlier stage at stride 8
# (`block_5_add`, 4x4) shows where the evidence is.

# %%
from cnnzoo.explain import grad_cam, overlay

fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for i, index in enumerate(test_idx[::97][:4]):
    image = x[index]
    heatmap = grad_cam(tuned.model, image, layer_name="block_5_add")
    axes[0, i].imshow(image); axes[0, i].set_title(f"digit {y[index]}")
    axes[1, i].imshow(overlay(image, heatmap))
for ax in axes.flat:
    ax.axis("off")

# %% [markdown]
# ## 5. Imbalanced data: balanced sampling, class weights
# Real sets are rarely balanced. Cut digits 5-9 to a tenth of their training images (about 11 each against ~108
# for 0-4) and hold out 40 % of every class. Plain training learns the rare digits late; drawing every class
# equally often (`sampling="balanced"`) or weighing the loss (`class_weight="balanced"`) fixes that. Plain accuracy
# hides it: read balanced accuracy and macro-F1 (`benchmarks/bench_recipes.py` measured macro-F1 0.81 plain
# against 0.91 balanced over 3 seeds at 3 epochs).

# %%
rng = np.random.default_rng(0)
imb_train, imb_test = [], []
for digit in range(10):
    idx = rng.permutation(np.flatnonzero(y == digit))
    cut = int(0.4 * len(idx))
    imb_test += idx[:cut].tolist()
    imb_train += (idx[cut:] if digit < 5 else idx[cut:][: round(0.1 * (len(idx) - cut))]).tolist()
results = {}
for recipe, options in {"plain": {}, "class_weight": {"class_weight": "balanced"}, "sampling": {}}.items():
    keras.utils.set_random_seed(0)
    imb = cnnzoo.data.from_arrays(x[imb_train], y[imb_train], batch_size=32, validation_split=0.0, seed=0,
                                  sampling="balanced" if recipe == "sampling" else "shuffle")
    model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(SIZE, SIZE, 3))
    model = cnnzoo.train.fit(model, imb, epochs=1 if QUICK else 3, learning_rate=3e-3, verbose=0, seed=0,
                             **options).model
    results[recipe] = cnnzoo.evaluate(model, (x[imb_test], y[imb_test]))
print("training images per digit:", imb.class_counts)
for recipe, r in results.items():
    print(f"{recipe:>12}: accuracy {r.accuracy:.3f}  balanced accuracy {r.balanced_accuracy:.3f}  "
          f"macro-F1 {r.macro_f1:.3f}")
fig, ax = plt.subplots(figsize=(7, 2.8))
for offset, (recipe, r) in enumerate(results.items()):
    ax.bar(np.arange(10) + 0.27 * (offset - 1), r.per_class["recall"], width=0.27, label=recipe)
ax.set_xticks(range(10)); ax.set_xlabel("digit (5-9 rare)"); ax.set_ylabel("held-out recall"); ax.legend()
fig

# %% [markdown]
# ## 6. Multi-label: which digits does a scene hold?
# A digit scene holds 1-3 digits on a texture photograph; its labels are the set of digits present (multi-hot
# rows). A sigmoid head scores each digit on its own and trains with binary cross-entropy; the report gives mAP
# over labels and per-label F1. The decision threshold of each label is tuned on the validation split and baked
# into the export: its `labels` output applies them.

# %%
from cnnzoo.data.bundled import digit_scenes

def present(scenes):
    hot = np.zeros((len(scenes["boxes"]), 10), np.float32)
    for i, boxes in enumerate(scenes["boxes"]):
        hot[i, boxes[:, 4].astype(int)] = 1
    return hot

ml_train = digit_scenes(300 if QUICK else 3000, size=48, seed=0, split="train", scale=(16, 28),
                        digits_per_scene=(1, 3))
ml_test = digit_scenes(60 if QUICK else 300, size=48, seed=7, split="test", scale=(16, 28), digits_per_scene=(1, 3))
scenes = cnnzoo.data.from_arrays(ml_train["images"], present(ml_train), class_names=[str(d) for d in range(10)],
                                 batch_size=32, validation_split=0.2, seed=0)
keras.utils.set_random_seed(0)
tagger = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(48, 48, 3), classifier_activation="sigmoid")
tagger = cnnzoo.train.fit(tagger, scenes, epochs=1 if QUICK else 8, learning_rate=3e-3, verbose=0,
                          seed=0).model
thresholds = cnnzoo.evaluate(tagger, scenes).tune_thresholds()      # on the validation split
ml_report = cnnzoo.evaluate(tagger, (ml_test["images"], present(ml_test)), thresholds=thresholds)
print(ml_report.summary())

# %%
import tempfile
import tensorflow as tf

exported = cnnzoo.export(tagger, tempfile.mkdtemp(), formats=("saved_model",), representative_data=scenes)
serve = tf.saved_model.load(str(exported.directory)).signatures["serving_default"]
labels = serve(images=tf.constant(ml_test["images"][:4]))["labels"].numpy()
fig, axes = plt.subplots(1, 4, figsize=(9, 2.6))
for ax, image, row, truth in zip(axes, ml_test["images"][:4], labels, present(ml_test)[:4]):
    ax.imshow(image); ax.axis("off")
    ax.set_title(f"says {np.flatnonzero(row).tolist()}\nis {np.flatnonzero(truth).tolist()}", fontsize=9)
print("thresholds in the model card:", {k: round(v, 2) for k, v in exported.card["thresholds"].items()})
fig
