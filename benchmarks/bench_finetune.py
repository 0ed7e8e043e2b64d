"""Fine-tuning recipe against training from scratch, and the BatchNorm-momentum trap, on real digits.

Transfer (issue #5 item 9): scikit-learn's digits at 32 px RGB. `mobilenet_v2_035` is pretrained on digits 0-4
(`cnnzoo.train.fit`), then `cnnzoo.finetune` trains it on 10 labelled images per class of digits 5-9 (new head;
stages: head, then head + top two groups with discriminative rates). The baseline is the same architecture
from scratch with `fit` on the same 50 images for the same number of epochs, at each rate of a grid; the best
rate is the baseline (the strongest scratch run, not a strawman). Accuracy on all other 5-9 images, over seeds
(each seed: another few-shot sample and initialisation).

BN trap (item 11): `mobilenet_v2_035` (BN momentum 0.999) from scratch on all digits (80/20 split): training
accuracy against `evaluate` accuracy, without the recipe's BN handling (`bn_momentum=None,
recalibrate_bn=False`), after `recalibrate_bn` alone, and with the recipe's defaults.

Goals: `transfer_10_points` (fine-tuned mean >= best scratch mean + 10 points), `bn_trap_avoided` (the recipe's
evaluate accuracy within 5 points of its training accuracy).

Usage:
    python benchmarks/bench_finetune.py --quick      # 1 seed, 1-2 epochs per run (~1 min idle; checks)
    python benchmarks/bench_finetune.py              # 3 seeds, full settings
Writes benchmarks/results/bench_finetune.json (and prints a table).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import cnnzoo  # noqa: E402
from cnnzoo.train import Stage, finetune, fit, recalibrate_bn  # noqa: E402

MODEL = "mobilenet_v2_035"
FULL = dict(seeds=3, pretrain_epochs=10, head_epochs=3, tune_epochs=5, scratch_rates=(3e-3, 1e-3, 3e-4),
            trap_epochs=8, trap_runs=("without_bn_handling", "recipe"))
# Quick mode checks that everything runs (about a minute); its accuracies are not figures.
QUICK = dict(seeds=1, pretrain_epochs=2, head_epochs=1, tune_epochs=1, scratch_rates=(1e-3,), trap_epochs=1,
             trap_runs=("recipe",))


def digits(size=32):
    from sklearn.datasets import load_digits

    data = load_digits()
    grey = (data.images / 16.0 * 255.0)[..., None].astype("float32")
    images = tf.image.resize(grey, (size, size), method="bilinear").numpy()
    return np.repeat(np.clip(np.round(images), 0, 255).astype("uint8"), 3, axis=-1), data.target


def transfer(cfg, log):
    x, y = digits()
    low, high = np.where(y < 5)[0], np.where(y >= 5)[0]
    names = [str(c) for c in range(5, 10)]
    epochs = cfg["head_epochs"] + cfg["tune_epochs"]
    runs = []
    for seed in range(cfg["seeds"]):
        rng = np.random.default_rng(seed)
        few = np.concatenate([rng.choice(high[y[high] == c], 10, replace=False) for c in range(5, 10)])
        held = np.setdiff1d(high, few)
        pre = cnnzoo.data.from_arrays(x[low], y[low], batch_size=64, validation_split=0.1, seed=seed)
        shots = cnnzoo.data.from_arrays(x[few], y[few] - 5, batch_size=10, validation_split=0.0, seed=seed,
                                        class_names=names)
        test = (x[held], y[held] - 5)
        keras.utils.set_random_seed(seed)
        start = time.perf_counter()
        base = cnnzoo.create_model(MODEL, num_classes=5, input_shape=(32, 32, 3))
        pre_result = fit(base, pre, epochs=cfg["pretrain_epochs"], learning_rate=1e-2, verbose=0)
        pretrain_acc = cnnzoo.evaluate(base, pre).accuracy
        stages = [Stage("head", epochs=cfg["head_epochs"], learning_rate=1e-2),
                  Stage(3, epochs=cfg["tune_epochs"], learning_rate=3e-3)]
        tuned = finetune(base, shots, stages=stages, head="new", augment=None, verbose=0, seed=seed)
        tuned_acc = cnnzoo.evaluate(tuned.model, test).accuracy
        scratch = {}
        for rate in cfg["scratch_rates"]:
            keras.utils.set_random_seed(seed)
            model = cnnzoo.create_model(MODEL, num_classes=5, input_shape=(32, 32, 3))
            scratch[rate] = cnnzoo.evaluate(fit(model, shots, epochs=epochs, learning_rate=rate, verbose=0).model,
                                            test).accuracy
        run = {"seed": seed, "pretrain_val_accuracy": pretrain_acc, "finetuned": tuned_acc,
               "scratch_by_rate": {f"{r:g}": a for r, a in scratch.items()}, "held_out_images": int(len(held)),
               "pretrain_epochs_run": len(pre_result.history["epoch"]), "seconds": time.perf_counter() - start}
        log(f"seed {seed}: pretrained on 0-4 {pretrain_acc:.3f} | fine-tuned {tuned_acc:.3f} | scratch "
            + ", ".join(f"lr {r:g}: {a:.3f}" for r, a in scratch.items()))
        runs.append(run)
    tuned_mean = statistics.mean(r["finetuned"] for r in runs)
    scratch_means = {rate: statistics.mean(r["scratch_by_rate"][rate] for r in runs)
                     for rate in runs[0]["scratch_by_rate"]}
    best_rate = max(scratch_means, key=scratch_means.get)
    return {"model": MODEL, "epochs": epochs, "labelled_per_class": 10, "runs": runs,
            "finetuned_mean": tuned_mean, "scratch_mean_by_rate": scratch_means, "best_scratch_rate": best_rate,
            "best_scratch_mean": scratch_means[best_rate], "margin": tuned_mean - scratch_means[best_rate]}


def bn_trap(cfg, log):
    x, y = digits()
    data = cnnzoo.data.from_arrays(x, y, batch_size=32, validation_split=0.2, seed=0)
    out = {}
    runs = {"without_bn_handling": dict(bn_momentum=None, recalibrate_bn=False), "recipe": {}}
    for label, options in ((k, runs[k]) for k in cfg.get("trap_runs", tuple(runs))):
        keras.utils.set_random_seed(0)
        model = cnnzoo.create_model(MODEL, num_classes=10, input_shape=(32, 32, 3))
        result = fit(model, data, epochs=cfg["trap_epochs"], learning_rate=3e-3, verbose=0, **options)
        row = {"train_accuracy": result.history["accuracy"][-1],
               "evaluate_accuracy": cnnzoo.evaluate(result.model, data).accuracy}
        if label == "without_bn_handling":
            recalibrate_bn(result.model, data)
            row["evaluate_after_recalibrate_bn"] = cnnzoo.evaluate(result.model, data).accuracy
        out[label] = row
        log(f"{label}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
    return {"model": MODEL, "epochs": cfg["trap_epochs"], **out}


def markdown(report: dict) -> str:
    t, b = report["transfer"], report["bn_trap"]
    lines = [f"Transfer digits 0-4 -> 5-9, {MODEL}, 10 labelled images per class, {t['epochs']} epochs, "
             f"{len(t['runs'])} seed(s):", "",
             "| run | held-out 5-9 accuracy |", "|---|---|",
             f"| fine-tuned (cnnzoo.finetune) | {t['finetuned_mean']:.3f} |"]
    lines += [f"| from scratch, lr {rate} | {acc:.3f} |" for rate, acc in t["scratch_mean_by_rate"].items()]
    lines += ["", f"Margin over the best scratch run: {100 * t['margin']:+.1f} points.", "",
              f"BN trap, {MODEL} from scratch, {b['epochs']} epochs:", "",
              "| run | training accuracy | evaluate accuracy |", "|---|---|---|"]
    for label in ("without_bn_handling", "recipe"):
        if label in b:
            lines.append(f"| {label} | {b[label]['train_accuracy']:.3f} | {b[label]['evaluate_accuracy']:.3f} |")
    if "without_bn_handling" in b:
        lines.append(f"| without, then recalibrate_bn | - | "
                     f"{b['without_bn_handling']['evaluate_after_recalibrate_bn']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 seed, short runs")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                      "bench_finetune.json"))
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL)
    if args.seeds:
        cfg["seeds"] = args.seeds
    started = time.perf_counter()
    report = {"quick": args.quick, "settings": cfg, "machine": platform.node(),
              "transfer": transfer(cfg, print)}
    print(f"transfer: {time.perf_counter() - started:.0f} s", flush=True)
    report["bn_trap"] = bn_trap(cfg, print)
    print(f"transfer + BN trap: {time.perf_counter() - started:.0f} s", flush=True)
    trap = report["bn_trap"]["recipe"]
    report["goals"] = {"transfer_10_points": report["transfer"]["margin"] >= 0.10,
                       "bn_trap_avoided": abs(trap["evaluate_accuracy"] - trap["train_accuracy"]) < 0.05}
    report["seconds"] = time.perf_counter() - started
    report["markdown"] = markdown(report)
    print(report["markdown"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, default=str)
    return report


if __name__ == "__main__":
    main()
