"""Images/s of the full input pipeline, per augmentation policy, against the same policy in Keras's own layers.

Both pipelines decode JPEGs from disk, resize to 224x224 and batch 64, in the same run on the same files:
    cnnzoo:  cnnzoo.data.from_directory(cache=False) -> cnnzoo.data.augment_dataset(policy)
    keras:   keras.utils.image_dataset_from_directory -> map(keras.Sequential(the policy's Keras layers))
It also times MobileNetV2 training steps (cnnzoo.create_model("mobilenet_v2"), batch 32, 224 px) on this
machine, to report whether the pipeline would be the bottleneck of training.

Goals (issue #4): "standard" >= 2x its Keras stack, "heavy" >= 4x Keras's (RandAugment) stack, and the
pipeline faster than training.

Usage:
    python benchmarks/bench_data.py --quick          # < 1 min on 2 idle CPU cores (checks, not figures)
    python benchmarks/bench_data.py --images 2048    # steadier figures
Writes benchmarks/results/bench_data.json (and prints a table).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

import cnnzoo  # noqa: E402
from cnnzoo.data import augment as cz_augment  # noqa: E402
from cnnzoo.options import AUGMENT_POLICIES as POLICIES  # noqa: E402

SIZE, BATCH = 224, 64


def make_jpegs(root: str, count: int, classes: int = 4, seed: int = 0) -> None:
    """`count` JPEGs of photo content (scikit-image samples), ImageNet-like sizes (~300-500 px), quality 90."""
    from PIL import Image
    from skimage import data as samples

    photos = [samples.astronaut(), samples.chelsea(), samples.coffee(), samples.rocket(),
              np.stack([samples.camera()] * 3, -1)]
    rng = np.random.default_rng(seed)
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class_{c}"), exist_ok=True)
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = Image.fromarray(photo[y:y + ch, x:x + cw])
        width = int(rng.integers(300, 501))
        crop = crop.resize((width, max(1, int(width * ch / cw * rng.uniform(0.7, 1.0)))), Image.BILINEAR)
        crop.save(os.path.join(root, f"class_{i % classes}", f"{i:05d}.jpg"), quality=90)


def keras_layers(policy: str) -> list[keras.layers.Layer]:
    """The policy rebuilt from Keras 3's own layers, step by step with the same parameters."""
    layers = []
    for name, options in cz_augment.policy_steps(policy):
        if name == "flip":
            layers.append(keras.layers.RandomFlip(options["mode"]))
        elif name == "rotation":
            layers.append(keras.layers.RandomRotation(options["factor"]))
        elif name == "zoom":
            layers.append(keras.layers.RandomZoom(options["factor"]))
        elif name == "translation":
            layers.append(keras.layers.RandomTranslation(options["factor"], options["factor"]))
        elif name == "color_jitter":
            s = options["saturation"]   # our multiplier k in [1-s, 1+s] is Keras's f = k / (1 + k)
            layers.append(keras.layers.RandomColorJitter(
                value_range=(0, 255), brightness_factor=options["brightness"],
                contrast_factor=(-options["contrast"], options["contrast"]),
                saturation_factor=((1 - s) / (2 - s), (1 + s) / (2 + s)), hue_factor=2 * options["hue"]))
        elif name == "erasing":
            p = options["probability"]
            layers.append(keras.layers.RandomErasing(factor=(p, p), scale=options["scale"]))
        elif name == "rand_augment":
            layers.append(keras.layers.RandAugment(num_ops=options["num_ops"], factor=options["factor"]))
        else:
            raise ValueError(name)
    return layers


def throughput(ds: tf.data.Dataset, *, warmup: int, min_batches: int, max_batches: int, seconds: float) -> float:
    """Images/s of the repeated stream: time batches until `min_batches` are done and `seconds` have passed
    (at most `max_batches`).

    warmup > 0 skips that many batches first (steady state, for long runs). warmup == 0 starts the clock
    before the iterator, so pipeline start-up is counted: with a few batches, batches computed in parallel
    during a warm-up would otherwise come for free and flatter the slower pipeline most.
    """
    start = time.perf_counter()
    iterator = iter(ds.repeat())
    for _ in range(warmup):
        next(iterator)
    if warmup:
        start = time.perf_counter()
    count, batches = 0, 0
    while batches < max_batches and (batches < min_batches or time.perf_counter() - start < seconds):
        count += int(next(iterator)[0].shape[0])
        batches += 1
    rate = count / (time.perf_counter() - start)
    del iterator   # stops its background threads before the next pipeline is timed
    return rate


def cnnzoo_pipeline(root: str, policy: str) -> tf.data.Dataset:
    """from_directory (its one-off file scan is not timed: `throughput` times the stream) + augment_dataset."""
    data = cnnzoo.data.from_directory(root, image_size=SIZE, batch_size=BATCH, validation_split=0.0, seed=0,
                                      cache=False)
    return cnnzoo.data.augment_dataset(data, policy, seed=0)


def keras_pipeline(root: str, policy: str) -> tf.data.Dataset:
    """The Keras guide's pipeline: image_dataset_from_directory, then the augmentation layers in a map."""
    ds = keras.utils.image_dataset_from_directory(root, image_size=(SIZE, SIZE), batch_size=BATCH, seed=0,
                                                  shuffle=True, verbose=False)
    augment = keras.Sequential(keras_layers(policy))
    if policy != "none":
        ds = ds.map(lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def model_training_rate(steps: int, batch: int = 32) -> float:
    model = cnnzoo.create_model("mobilenet_v2", num_classes=10, input_shape=(SIZE, SIZE, 3))
    # XLA where there is a GPU (the figure that matters there); on CPU its compile time would dominate --quick.
    gpu = bool(tf.config.list_physical_devices("GPU"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile="auto" if gpu else False)
    x = np.random.default_rng(0).integers(0, 256, (batch, SIZE, SIZE, 3)).astype("float32")
    y = np.arange(batch) % 10
    for _ in range(2):
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * batch / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few images, one round, few steps (< 1 min on 2 idle cores)")
    parser.add_argument("--images", type=int, default=None,
                        help="JPEGs in the test folder (default 1024, 192 with --quick)")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "bench_data.json"))
    args = parser.parse_args(argv)
    images = args.images or (192 if args.quick else 1024)
    steps = args.train_steps or (2 if args.quick else 10)
    rounds = 1 if args.quick else 2
    timing = dict(warmup=0, min_batches=3, max_batches=3, seconds=0.0) if args.quick else \
        dict(warmup=3, min_batches=4, max_batches=40, seconds=30.0)
    policies = [p for p in args.policies.split(",") if p]

    root = tempfile.mkdtemp(prefix="cnnzoo-bench-data-")
    started = time.perf_counter()
    try:
        make_jpegs(root, images)
        print(f"{images} JPEGs written in {time.perf_counter() - started:.1f} s", flush=True)
        results = {}
        for k, policy in enumerate(policies):
            # Alternate which pipeline goes first and keep the best of `rounds`: load from other processes
            # drifts, and the best run is the least disturbed one.
            best = {"cnnzoo": 0.0, "keras": 0.0}
            for r in range(rounds):
                order = ["cnnzoo", "keras"] if (k + r) % 2 == 0 else ["keras", "cnnzoo"]
                for which in order:
                    ds = cnnzoo_pipeline(root, policy) if which == "cnnzoo" else keras_pipeline(root, policy)
                    best[which] = max(best[which], throughput(ds, **timing))
            ours, theirs = best["cnnzoo"], best["keras"]
            results[policy] = {"cnnzoo_img_s": round(ours, 1), "keras_img_s": round(theirs, 1),
                               "speedup": round(ours / theirs, 2)}
            print(f"{policy:9s} cnnzoo {ours:7.1f} img/s   keras {theirs:7.1f} img/s   x{ours / theirs:.2f}"
                  f"   ({time.perf_counter() - started:.0f} s)", flush=True)
        mark = time.perf_counter()
        train_rate = model_training_rate(steps)
        print(f"mobilenet_v2 training: {train_rate:.1f} img/s (batch 32, {SIZE} px; measured in "
              f"{time.perf_counter() - mark:.0f} s)")
        for policy, row in results.items():
            row["pipeline_over_training"] = round(row["cnnzoo_img_s"] / train_rate, 2)
            print(f"{policy:9s} pipeline / training = {row['pipeline_over_training']:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    goals = {}
    if "standard" in results:
        goals["standard_vs_keras_ge_2x"] = results["standard"]["speedup"] >= 2.0
    if "heavy" in results:
        goals["heavy_vs_keras_randaugment_ge_4x"] = results["heavy"]["speedup"] >= 4.0
    goals["pipeline_faster_than_training"] = all(r["pipeline_over_training"] >= 1.0 for r in results.values())
    report = {
        "benchmark": "bench_data", "quick": args.quick, "images": images, "image_size": SIZE, "batch": BATCH,
        "policies": results, "mobilenet_v2_train_img_s": round(train_rate, 1), "goals": goals,
        "load_average": list(os.getloadavg()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
                    "tensorflow": tf.__version__, "keras": keras.__version__},
        "seconds": round(time.perf_counter() - started, 1),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print("goals:", goals)
    print("wrote", args.out)
    return report


if __name__ == "__main__":
    main()
