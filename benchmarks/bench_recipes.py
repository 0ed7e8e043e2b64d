"""Training recipes for real data (issue 17), measured on real images that ship with scikit-learn / scikit-image.

- imbalance: digits 5-9 cut to 10 % of their training images (about 11 each against 108 for 0-4), 40 % of every
  class held out untouched; ResNet18 at 32 px trained plain, with `class_weight="balanced"`, with
  `sampling="balanced"` and with `loss="focal"`, at a short and a longer schedule; held-out macro-F1, balanced
  accuracy and accuracy over seeds. Goal: the balanced recipe beats plain training by >= 5 macro-F1 points
  (`imbalance_5_points`, on the short schedule the test uses).
- distill: a ResNet18 teacher trained on 600 digits (48 px) lifts a MobileNetV2-0.35 student trained for 6 epochs
  with `cnnzoo.train.distill` above the same student trained alone with `fit` (same epochs, rate, data), held-out
  accuracy over seeds; the distilled student then exports to int8 TFLite with parity. Goal: `distill_lifts`.
- multilabel: which digits a digit scene holds (ResNet18 sigmoid head, 48 px), held-out mAP and macro-F1 at 0.5
  and at thresholds tuned on validation.
- tta: test-time augmentation on texture patches of scikit-image's brick, grass and gravel photographs (classes
  that survive a mirror; train and test patches from disjoint halves of each photo): accuracy without TTA, with
  "flip", "crops" and both. And on digits, where a mirror changes the class: "crops" only, "flip" for contrast.
- ema: digits, MobileNetV2-0.35 at 32 px, `ema=0.99` against none, same schedule; held-out accuracy over seeds.

Usage:
    python benchmarks/bench_recipes.py --quick                  # toy sizes: checks that it runs (not figures)
    python benchmarks/bench_recipes.py [--only imbalance,tta]   # the figures (~40 min on 2 idle cores)
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

SECTIONS = ("imbalance", "distill", "multilabel", "tta", "ema")
FULL = dict(seeds=3, imbalance_epochs=(3, 10), teacher_epochs=6, student_epochs=6, distill_images=600,
            scenes=3000, multilabel_epochs=8, tta_epochs=6, ema_epochs=8)
QUICK = dict(seeds=1, imbalance_epochs=(1,), teacher_epochs=1, student_epochs=1, distill_images=200,
             scenes=160, multilabel_epochs=1, tta_epochs=1, ema_epochs=1)


def _digits(size):
    from cnnzoo.data.bundled import digits_rgb

    x, y, _ = digits_rgb(size)
    return x, y


def imbalanced_split(y, seed, *, minority=range(5, 10), keep=0.1, held_out=0.4):
    """(train indices, test indices): `held_out` of every class for testing, `keep` of the minority classes' rest."""
    import numpy as np

    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        cut = int(held_out * len(idx))
        test += idx[:cut].tolist()
        pool = idx[cut:]
        train += (pool[:max(1, round(keep * len(pool)))] if c in minority else pool).tolist()
    return np.array(train), np.array(test)


def imbalance(cfg, log):
    import keras

    import cnnzoo

    x, y = _digits(32)
    recipes = {"plain": {}, "class_weight": {"class_weight": "balanced"}, "sampling": {},
               "focal": {"loss": "focal"}}
    rows = []
    for epochs in cfg["imbalance_epochs"]:
        for seed in range(cfg["seeds"]):
            train, test = imbalanced_split(y, seed)
            for name, options in recipes.items():
                keras.utils.set_random_seed(seed)
                data = cnnzoo.data.from_arrays(x[train], y[train], batch_size=32, validation_split=0.0, seed=seed,
                                               sampling="balanced" if name == "sampling" else "shuffle")
                model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
                model = cnnzoo.train.fit(model, data, epochs=epochs, learning_rate=3e-3, verbose=0, seed=seed,
                                         **options).model
                report = cnnzoo.evaluate(model, (x[test], y[test]))
                rows.append({"epochs": epochs, "seed": seed, "recipe": name, "macro_f1": round(report.macro_f1, 4),
                             "balanced_accuracy": round(report.balanced_accuracy, 4),
                             "accuracy": round(report.accuracy, 4)})
                log(f"imbalance {rows[-1]}")
    return rows


def distill(cfg, log, out_dir):
    import keras
    import numpy as np

    import cnnzoo

    size = 48
    x, y = _digits(size)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:cfg["distill_images"]], order[-500:]
    data = cnnzoo.data.from_arrays(x[train], y[train], batch_size=32, validation_split=0.0, seed=0)
    keras.utils.set_random_seed(0)
    teacher = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(size, size, 3))
    teacher = cnnzoo.train.fit(teacher, data, epochs=cfg["teacher_epochs"], learning_rate=3e-3, verbose=0,
                               seed=0).model
    rows = [{"seed": None, "model": "teacher resnet18",
             "accuracy": round(cnnzoo.evaluate(teacher, (x[test], y[test])).accuracy, 4)}]
    student = None
    for seed in range(cfg["seeds"]):
        for kind in ("alone", "distilled"):
            keras.utils.set_random_seed(seed)
            model = cnnzoo.create_model("mobilenet_v2_035", num_classes=10, input_shape=(size, size, 3))
            common = dict(epochs=cfg["student_epochs"], learning_rate=1e-2, verbose=0, seed=seed)
            if kind == "alone":
                model = cnnzoo.train.fit(model, data, **common).model
            else:
                model = cnnzoo.train.distill(teacher, model, data, temperature=4.0, alpha=0.5, **common).model
                student = student or model
            rows.append({"seed": seed, "model": f"mobilenet_v2_035 {kind}",
                         "accuracy": round(cnnzoo.evaluate(model, (x[test], y[test])).accuracy, 4)})
            log(f"distill {rows[-1]}")
    report = cnnzoo.export(student, os.path.join(out_dir, "distilled_student"), formats=("tflite_int8",),
                           representative_data=data, parity_data=(x[test], y[test]), latency_repeats=2)
    int8 = report.parity["tflite_int8"]
    return {"runs": rows, "int8": {k: int8[k] for k in ("passed", "top1_agreement", "accuracy_drop_points")},
            "int8_bytes": report.sizes["tflite_int8"]}


def multilabel(cfg, log):
    import keras
    import numpy as np

    import cnnzoo
    from cnnzoo.data.bundled import digit_scenes

    def present(scenes):
        hot = np.zeros((len(scenes["boxes"]), 10), np.float32)
        for i, boxes in enumerate(scenes["boxes"]):
            hot[i, boxes[:, 4].astype(int)] = 1
        return hot

    rows = []
    for seed in range(cfg["seeds"]):
        train = digit_scenes(cfg["scenes"], size=48, seed=seed, split="train", scale=(16, 28),
                             digits_per_scene=(1, 3))
        test = digit_scenes(300, size=48, seed=100 + seed, split="test", scale=(16, 28), digits_per_scene=(1, 3))
        data = cnnzoo.data.from_arrays(train["images"], present(train), class_names=[str(d) for d in range(10)],
                                       batch_size=32, validation_split=0.2, seed=seed)
        keras.utils.set_random_seed(seed)
        model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(48, 48, 3),
                                    classifier_activation="sigmoid")
        model = cnnzoo.train.fit(model, data, epochs=cfg["multilabel_epochs"], learning_rate=3e-3, verbose=0,
                                 seed=seed).model
        tuned = cnnzoo.evaluate(model, data).tune_thresholds()
        plain = cnnzoo.evaluate(model, (test["images"], present(test)))
        report = plain.with_thresholds(tuned)
        rows.append({"seed": seed, "map": round(report.map, 4), "macro_f1_at_0.5": round(plain.macro_f1, 4),
                     "macro_f1_tuned": round(report.macro_f1, 4), "subset_accuracy": round(report.subset_accuracy, 4),
                     "positives_share": round(float(present(test).mean()), 4)})
        log(f"multilabel {rows[-1]}")
    return rows


def texture_patches(count, size, seed, part):
    """uint8 patches [count, size, size, 3] and labels of scikit-image's brick (0), grass (1), gravel (2):
    random crops (40-90 % of 128 px, rescaled) of the photo's top half ("train") or bottom half ("test"), tinted."""
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    photos = [samples.brick(), samples.grass(), samples.gravel()]
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), np.uint8)
    labels = rng.integers(0, 3, count).astype(np.int32)
    for i, label in enumerate(labels):
        photo = photos[label]
        half = photo.shape[0] // 2
        rows = photo[:half] if part == "train" else photo[half:]
        side = int(128 * rng.uniform(0.4, 0.9))
        top, left = rng.integers(0, rows.shape[0] - side + 1), rng.integers(0, rows.shape[1] - side + 1)
        patch = np.asarray(Image.fromarray(rows[top:top + side, left:left + side]).resize((size, size),
                                                                                        Image.BILINEAR))
        images[i] = np.clip(patch[..., None] * rng.uniform(0.7, 1.0, 3), 0, 255).astype(np.uint8)
    return images, labels


def tta(cfg, log):
    import keras

    import cnnzoo

    rows = []
    for seed in range(cfg["seeds"]):
        x, y = texture_patches(600, 32, seed, "train")
        xt, yt = texture_patches(600, 32, 100 + seed, "test")
        keras.utils.set_random_seed(seed)
        data = cnnzoo.data.from_arrays(x, y, class_names=["brick", "grass", "gravel"], batch_size=32,
                                       validation_split=0.0, seed=seed)
        model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
        model = cnnzoo.train.fit(model, data, epochs=cfg["tta_epochs"], learning_rate=1e-2, verbose=0, seed=seed,
                                 augment="light").model
        row = {"seed": seed, "data": "textures"}
        for views in (None, "flip", "crops", ("flip", "crops")):
            report = cnnzoo.evaluate(model, (xt, yt), tta=views)
            row["+".join(views) if isinstance(views, tuple) else (views or "none")] = round(report.accuracy, 4)
        rows.append(row)
        log(f"tta {row}")

        xd, yd = _digits(32)
        train, test = imbalanced_split(yd, seed, keep=1.0)
        keras.utils.set_random_seed(seed)
        digits = cnnzoo.data.from_arrays(xd[train], yd[train], batch_size=32, validation_split=0.0, seed=seed)
        model = cnnzoo.create_model("resnet18", num_classes=10, input_shape=(32, 32, 3))
        model = cnnzoo.train.fit(model, digits, epochs=cfg["tta_epochs"], learning_rate=3e-3, verbose=0,
                                 seed=seed).model
        row = {"seed": seed, "data": "digits"}
        for views in (None, "crops", "flip"):
            row[views or "none"] = round(cnnzoo.evaluate(model, (xd[test], yd[test]), tta=views).accuracy, 4)
        rows.append(row)
        log(f"tta {row}")
    return rows


def ema(cfg, log):
    import keras

    import cnnzoo

    x, y = _digits(32)
    rows = []
    for seed in range(cfg["seeds"]):
        train, test = imbalanced_split(y, seed, keep=1.0)
        for setting in (None, 0.99):
            keras.utils.set_random_seed(seed)
            data = cnnzoo.data.from_arrays(x[train], y[train], batch_size=32, validation_split=0.0, seed=seed)
            model = cnnzoo.create_model("mobilenet_v2_035", num_classes=10, input_shape=(32, 32, 3))
            model = cnnzoo.train.fit(model, data, epochs=cfg["ema_epochs"], learning_rate=1e-2, verbose=0,
                                     seed=seed, ema=setting).model
            rows.append({"seed": seed, "ema": setting,
                         "accuracy": round(cnnzoo.evaluate(model, (x[test], y[test])).accuracy, 4)})
            log(f"ema {rows[-1]}")
    return rows


def _mean(rows, key, **match):
    import statistics

    values = [r[key] for r in rows if key in r and all(r.get(k) == v for k, v in match.items())]
    return round(statistics.mean(values), 4) if values else None


def goals(report: dict) -> dict:
    out = {}
    if "imbalance" in report:
        rows, short = report["imbalance"], min(r["epochs"] for r in report["imbalance"])
        plain = _mean(rows, "macro_f1", recipe="plain", epochs=short)
        best = max(_mean(rows, "macro_f1", recipe=r, epochs=short) for r in ("class_weight", "sampling", "focal"))
        out["imbalance_5_points"] = {"plain": plain, "best_balanced": best, "met": best - plain >= 0.05}
    if "distill" in report:
        runs = report["distill"]["runs"]
        alone = _mean(runs, "accuracy", model="mobilenet_v2_035 alone")
        distilled = _mean(runs, "accuracy", model="mobilenet_v2_035 distilled")
        out["distill_lifts"] = {"alone": alone, "distilled": distilled,
                                "met": distilled > alone and report["distill"]["int8"]["passed"]}
    return out


def markdown(report: dict) -> str:
    parts = []
    if "imbalance" in report:
        parts.append("Imbalance (macro-F1 / balanced accuracy, mean of seeds):\n\n" + _common.table(
            [[e, r, _mean(report["imbalance"], "macro_f1", recipe=r, epochs=e),
              _mean(report["imbalance"], "balanced_accuracy", recipe=r, epochs=e)]
             for e in sorted({row["epochs"] for row in report["imbalance"]})
             for r in ("plain", "class_weight", "sampling", "focal")],
            ["epochs", "recipe", "macro-F1", "balanced accuracy"]))
    if "distill" in report:
        runs = report["distill"]["runs"]
        parts.append("Distillation (held-out accuracy, mean of seeds):\n\n" + _common.table(
            [[m, _mean(runs, "accuracy", model=m)] for m in dict.fromkeys(r["model"] for r in runs)],
            ["model", "accuracy"]) + f"\n\nint8 student: {report['distill']['int8']}")
    if "multilabel" in report:
        rows = report["multilabel"]
        parts.append("Multi-label digit scenes (mean of seeds):\n\n" + _common.table(
            [[k, _mean(rows, k)] for k in ("map", "macro_f1_at_0.5", "macro_f1_tuned", "subset_accuracy",
                                            "positives_share")], ["figure", "value"]))
    if "tta" in report:
        rows = report["tta"]
        keys = [k for k in rows[0] if k not in ("seed", "data")] + ["flip+crops"]
        parts.append("Test-time augmentation (held-out accuracy, mean of seeds):\n\n" + _common.table(
            [[d] + [_mean(rows, k, data=d) for k in dict.fromkeys(keys)] for d in ("textures", "digits")],
            ["data"] + list(dict.fromkeys(keys))))
    if "ema" in report:
        rows = report["ema"]
        parts.append("Weight EMA (held-out accuracy, mean of seeds):\n\n" + _common.table(
            [[s, _mean(rows, "accuracy", ema=s)] for s in (None, 0.99)], ["ema", "accuracy"]))
    return "\n\n".join(parts)


def main(argv=None, log=print) -> dict:
    import tempfile

    p = _common.parser(__doc__.splitlines()[0], "bench_recipes.json")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {','.join(SECTIONS)}")
    args = p.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        p.error(f"--only takes {','.join(SECTIONS)}. Received: --only={args.only}")
    cfg = dict(QUICK if args.quick else FULL)
    started = time.perf_counter()
    report = {"benchmark": "recipes", "quick": args.quick, "config": cfg, "machine": _common.machine_info()}
    with tempfile.TemporaryDirectory() as scratch:
        for section in wanted:
            t = time.perf_counter()
            report[section] = (distill(cfg, log, scratch) if section == "distill" else
                               globals()[section](cfg, log))
            report.setdefault("section_seconds", {})[section] = round(time.perf_counter() - t, 1)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load_average_end"] = _common.load_average()
    _common.write_json(args.out, report)            # the measurements first: a summary bug must not lose them
    report["goals"] = goals(report)
    report["markdown"] = markdown(report)
    _common.write_json(args.out, report)
    log(report["markdown"])
    log(f"goals: {report['goals']}")
    log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
