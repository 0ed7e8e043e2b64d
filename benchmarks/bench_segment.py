"""Semantic segmentation on real pixels: a mobilenet_v2_035-FPN segmenter trained on digit scenes, scored by mIoU.

Data: `cnnzoo.data.bundled.digit_scenes` (scikit-learn's handwritten digits on scikit-image's brick, grass and
gravel photographs; 11 classes: background and digits 0-9). Training scenes draw from one half of the
handwritten samples (`split="train"`), the held-out scenes from the other half (`split="test"`), so no test digit
was ever seen; digits are 16-40 px (`digit_scenes`' default) in 64-px scenes. The segmenter uses the sub-pixel
("transposed") upsampling, which keeps strokes a few pixels wide. Training is `cnnzoo.train.fit` (AdamW, one-cycle
schedule, BN momentum "auto", the segmenter loss "auto": cross-entropy + Dice); evaluation is `cnnzoo.evaluate`
(mIoU over the classes, background included).
Speed: inference img/s of the trained segmenter at batch 1 and 16 (a `tf.function`, fastest call per round), and
training img/s from the fit's wall time.

Goal (issue 16): held-out mIoU >= 0.75.

Usage:
    python benchmarks/bench_segment.py --quick     # 200 scenes, 2 epochs: checks that it runs (not figures)
    python benchmarks/bench_segment.py             # 3000 scenes, 30 epochs (~25 min on 2 idle cores)
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

MODEL = "mobilenet_v2_035"
FULL = dict(train=3000, test=500, epochs=30, size=64, scale=(16, 40), channels=128, upsampling="transposed",
            schedule="one_cycle", learning_rate=1e-2, batch=16, rounds=5)
QUICK = dict(FULL, train=200, test=50, epochs=2, rounds=2)
GOAL_MIOU = 0.75


def run(cfg: dict, seed: int, log=print) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    import cnnzoo
    from cnnzoo.data.bundled import digit_scenes

    keras.utils.set_random_seed(seed)
    train = digit_scenes(cfg["train"], size=cfg["size"], seed=seed, split="train", scale=cfg["scale"])
    test = digit_scenes(cfg["test"], size=cfg["size"], seed=10_000 + seed, split="test", scale=cfg["scale"])
    data = cnnzoo.data.from_arrays(train["images"], masks=train["masks"], class_names=train["class_names"],
                                   batch_size=cfg["batch"], validation_split=0.0, seed=seed)
    model = cnnzoo.create_segmenter(MODEL, num_classes=len(train["class_names"]), channels=cfg["channels"],
                                    upsampling=cfg["upsampling"])
    started = time.perf_counter()
    result = cnnzoo.train.fit(model, data, epochs=cfg["epochs"], learning_rate=cfg["learning_rate"],
                              schedule=cfg["schedule"], verbose=0, seed=seed)
    train_seconds = time.perf_counter() - started
    report = cnnzoo.evaluate(result.model, (test["images"], test["masks"]), class_names=train["class_names"])
    log(f"seed {seed}: mIoU {report.miou:.3f}, pixel accuracy {report.pixel_accuracy:.3f}, "
        f"{train_seconds:.0f} s training")

    infer = tf.function(lambda x: result.model(x, training=False))
    one = tf.constant(test["images"][:1].astype("float32"))
    batch = tf.constant(test["images"][:16].astype("float32"))
    seconds = _common.interleaved({"b1": lambda: infer(one).numpy(), "b16": lambda: infer(batch).numpy()},
                                  rounds=cfg["rounds"], warmup=2, calls=5, best_of=True)
    return {"seed": seed, "miou": round(report.miou, 4), "pixel_accuracy": round(report.pixel_accuracy, 4),
            "per_class_iou": {k: round(v, 4) for k, v in report.per_class_iou.items()},
            "params": int(result.model.count_params()), "train_seconds": round(train_seconds, 1),
            "train_img_s": round(cfg["train"] * cfg["epochs"] / train_seconds, 1),
            "inference_b1_img_s": _common.rate_summary(seconds["b1"], 1)["img_s"],
            "inference_b16_img_s": _common.rate_summary(seconds["b16"], 16)["img_s"]}


def markdown(report: dict) -> str:
    rows = [[r["seed"], r["miou"], r["pixel_accuracy"], r["params"], r["train_img_s"], r["inference_b1_img_s"],
             r["inference_b16_img_s"]] for r in report["runs"]]
    cfg = report["config"]
    text = (f"{MODEL}-FPN segmenter ({cfg['upsampling']} upsampling, FPN {cfg['channels']} channels) trained "
            f"{cfg['epochs']} epochs ({cfg['schedule']}, peak {cfg['learning_rate']}) on {cfg['train']} digit scenes "
            f"of {cfg['scale'][0]}-{cfg['scale'][1]} px digits at {cfg['size']} px, scored on {cfg['test']} "
            f"held-out scenes (digits never seen). Goal mIoU >= {GOAL_MIOU}: "
            f"{'met' if report['goal']['miou_ge_goal'] else 'NOT met'}.\n\n")
    return text + _common.table(rows, ["seed", "mIoU", "pixel accuracy", "params", "train img/s",
                                       "inference b1 img/s", "inference b16 img/s"])


def main(argv=None, log=print) -> dict:
    p = _common.parser(__doc__.splitlines()[0], "bench_segment.json")
    p.add_argument("--seeds", type=int, default=1, help="independent runs (data, initialisation)")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds takes a whole number >= 1. Received: --seeds={args.seeds}")
    cfg = dict(QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"] = args.rounds
    started = time.perf_counter()
    info = _common.machine_info()
    runs = [run(cfg, seed, log) for seed in range(args.seeds)]
    worst = min(r["miou"] for r in runs)
    report = {"benchmark": "segment", "quick": args.quick, "model": MODEL, "config": cfg, "runs": runs,
              "goal": {"miou_goal": GOAL_MIOU, "worst_miou": worst, "miou_ge_goal": worst >= GOAL_MIOU},
              "machine": info, "load_average_end": _common.load_average(),
              "seconds": round(time.perf_counter() - started, 1)}
    report["markdown"] = markdown(report)
    _common.write_json(args.out, report)
    log(report["markdown"])
    log(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
