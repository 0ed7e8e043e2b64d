"""One small member of every zoo family, trained briefly on real digits, exported with parity checks: SavedModel,
TFLite fp32 and int8, ONNX.

Why trained: the int8 gate (top-1 agreement with Keras >= 97 %, accuracy drop <= 1 point) only means something
when the model's outputs have a real classifier's margins. A random network's outputs are near-uniform (the gate
fails by chance) or saturated (it passes by chance). A random backbone with BN re-estimated and a linear probe
fails it for Inception-ResNet-v2, Xception, MobileNetV3 and ResNet50V2 (66-95 % agreement), so that tells us
nothing about the exporter.

Recipe, the same for every member: scikit-learn's 1,797 digits upsampled to the member's size (64 px, or the
family's minimum input size where that is larger: Inception 75, Xception 71). 80/20 split, seed 0, through
`cnnzoo.data.from_arrays`. Then `cnnzoo.train.fit` with AdamW and a one-cycle schedule, every layer and BN training.
Members under 0.1 G multiply-adds at their size get the demo's schedule (12 epochs, peak 1e-2): they are cheap, and
narrow widths learn slowly. The others get 5 epochs at a peak of 3e-3.
Then one `cnnzoo.export(formats=saved_model, tflite_fp32, tflite_int8, onnx, parity="warn")`. int8 is calibrated
on 200 training images, and every format is compared with Keras on all 360 held-out digits. The members cover
MobileNetV3's hard-swish and ConvNeXt's LayerNorm/GELU under int8.

The script exits 1 when any format of any member fails its gate, after writing the JSON. `run.py` keeps the
figures and reports the goal as NO.

Usage:
    python benchmarks/bench_families.py --quick     # 3 members, 2 epochs: a check that it runs (not figures)
    python benchmarks/bench_families.py             # all 17 families (~45 min on 2 cores)
    python benchmarks/bench_families.py --members mobilenet_v3_small_075,convnext_tiny
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

#: The smallest width of each family (MobileNetV3: the smallest with hard-swish and SE; VGG: with BN, so that a
#: few epochs from scratch learn), at 64 px or the family's minimum input size.
MEMBERS = ("vgg11_bn", "resnet18", "se_resnet18", "resnet50_v2", "resnext50_32x4d", "se_resnext50_32x4d",
           "mobilenet_v1_025", "mobilenet_v2_035", "mobilenet_v3_small_075", "efficientnet_b0",
           "efficientnet_v2_b0", "densenet121", "inception_v3", "inception_resnet_v2", "xception",
           "convnext_tiny", "nasnet_mobile")
QUICK_MEMBERS = ("mobilenet_v3_small_075", "mobilenet_v1_025")
#: (epochs, one-cycle peak rate) for cheap members (< SMALL_MACS multiply-adds per image at their size) and others.
SMALL_MACS = 1e8
SMALL_RECIPE, LARGE_RECIPE = (12, 1e-2), (5, 3e-3)
FORMATS = ("saved_model", "tflite_fp32", "tflite_int8", "onnx")


def member_size(name: str) -> int:
    """64 px, or the family's minimum input size where that is larger."""
    from cnnzoo import registry

    return max(64, registry.get_entry(name).min_input_size or 0)


def check_coverage(members) -> list[str]:
    """The families no member stands for (empty when every registered family is covered)."""
    from cnnzoo import models

    families = {models.get_entry(n).family for n in models.list_models()}
    return sorted(families - {models.get_entry(n).family for n in members})


def recipe(name: str, size: int) -> tuple[int, float]:
    """(epochs, peak learning rate) for `name` at `size` px: see the module docstring."""
    from cnnzoo.models.figures import zoo_table

    row = zoo_table(name)[0]
    macs = row["macs"] * (size / row["default_input_size"]) ** 2
    return SMALL_RECIPE if macs < SMALL_MACS else LARGE_RECIPE


def run_member(name: str, *, epochs: int | None = None, learning_rate: float | None = None, seed: int = 0,
               log=print) -> dict:
    """Train `name` briefly on the digits, export the four formats with parity="warn", return the figures."""
    import keras

    import cnnzoo
    from cnnzoo.data.bundled import digits_rgb

    size = member_size(name)
    default_epochs, default_rate = recipe(name, size)
    epochs, learning_rate = epochs or default_epochs, learning_rate or default_rate
    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    x, y, class_names = digits_rgb(size)
    data = cnnzoo.data.from_arrays(x, y, class_names=class_names, image_size=(size, size), batch_size=32,
                                   validation_split=0.2, seed=seed)
    model = cnnzoo.create_model(name, num_classes=data.num_classes, input_shape=(size, size, 3))
    cnnzoo.train.fit(model, data, epochs=epochs, learning_rate=learning_rate, schedule="one_cycle", verbose=0)
    trained = time.perf_counter()
    accuracy = float(cnnzoo.evaluate(model, data).accuracy)
    with tempfile.TemporaryDirectory(prefix="cnnzoo-bench-families-") as tmp:
        report = cnnzoo.export(model, tmp, formats=FORMATS, class_names=data.class_names, representative_data=data,
                               parity="warn", holdout_images=1000,  # all 360 held-out digits
                               latency_repeats=3)
        sizes = dict(report.sizes)
    parity = {fmt: _parity_figures(report.parity.get(fmt, {})) for fmt in FORMATS}
    row = {"family": cnnzoo.registry.get_entry(name).family, "size": size, "params": model.count_params(),
           "epochs": epochs, "learning_rate": learning_rate, "held_out_accuracy": round(accuracy, 4), "parity": parity, "sizes_bytes": sizes,
           "passed": all(p.get("passed") is True for p in parity.values()),
           "train_seconds": round(trained - started, 1), "seconds": round(time.perf_counter() - started, 1)}
    int8 = parity["tflite_int8"]
    log(f"{name:24s} {size:3d} px  acc {accuracy:.3f}  int8 agreement {int8.get('top1_agreement')}  "
        f"drop {int8.get('accuracy_drop_points')}  onnx {parity['onnx'].get('max_abs_diff')}  "
        f"{'passed' if row['passed'] else 'FAILED'}  ({row['seconds']:.0f} s)")
    keras.backend.clear_session()
    return row


def _parity_figures(result: dict) -> dict:
    keep = ("passed", "max_abs_diff", "batch_max_diff", "top1_agreement", "accuracy_drop_points", "images",
            "failures")
    return {k: result[k] for k in keep if k in result}


def goals(rows: dict, missing: list[str]) -> dict:
    return {"every_family_covered": not missing,
            "every_format_passes_parity": bool(rows) and all(r["passed"] for r in rows.values())}


def markdown(report: dict) -> str:
    rows = []
    for name, r in report["rows"].items():
        p = r["parity"]
        rows.append([name, r["family"], r["size"], f"{r['params']:,}", f"{r['epochs']} / {r['learning_rate']:g}",
                     r["held_out_accuracy"],
                     p["saved_model"].get("max_abs_diff"), p["tflite_fp32"].get("max_abs_diff"),
                     p["onnx"].get("max_abs_diff"), p["tflite_int8"].get("top1_agreement"),
                     p["tflite_int8"].get("accuracy_drop_points"), "yes" if r["passed"] else "**NO**",
                     r["seconds"]])
    failed = [n for n, r in report["rows"].items() if not r["passed"]]
    text = (f"One member per family, trained on the digits (AdamW, one-cycle; epochs / peak rate per row), then `cnnzoo.export` of {', '.join(FORMATS)} with parity checks: float "
            "formats as max |prob difference| from Keras, int8 as top-1 agreement and accuracy drop (points) on "
            f"the held-out digits. Failed: {', '.join(failed) or 'none'}."
            + (f" Families without a member: {', '.join(report['missing_families'])}."
               if report["missing_families"] else "") + "\n\n")
    return text + _common.table(rows, ["model", "family", "px", "params", "epochs / rate", "held-out acc", "SavedModel diff",
                                       "TFLite fp32 diff", "ONNX diff", "int8 agreement", "int8 drop", "passed",
                                       "seconds"])


def main(argv=None, log=print) -> int:
    p = _common.parser(__doc__.splitlines()[0], "bench_families.json")
    p.add_argument("--members", default=None, help="comma-separated model names (default: one per family)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per member (default: by cost)")
    p.add_argument("--learning-rate", type=float, default=None, help="one-cycle peak rate (default: by cost)")
    args = p.parse_args(argv)
    members = tuple(args.members.split(",")) if args.members else (QUICK_MEMBERS if args.quick else MEMBERS)
    epochs = args.epochs or (2 if args.quick else None)
    started = time.perf_counter()
    import cnnzoo

    unknown = [m for m in members if m not in cnnzoo.list_models()]
    if unknown:
        p.error(f"unknown model names in --members: {', '.join(unknown)}")
    missing = check_coverage(members)
    rows = {name: run_member(name, epochs=epochs, learning_rate=args.learning_rate, log=log) for name in members}
    report = {"benchmark": "families", "quick": args.quick, "recipes": {"small": SMALL_RECIPE, "large": LARGE_RECIPE,
                                                                       "small_below_macs": SMALL_MACS},
              "formats": list(FORMATS), "rows": rows, "missing_families": missing,
              "goals": goals(rows, missing if not (args.quick or args.members) else []),
              "machine": _common.machine_info(), "load_average_end": _common.load_average(),
              "seconds": round(time.perf_counter() - started, 1)}
    report["markdown"] = markdown(report)
    # Figures are written even when a gate failed; the exit code says whether every gate held.
    report["gate_failed"] = not report["goals"]["every_format_passes_parity"]
    _common.write_json(args.out, report)
    log(f"wrote {args.out}")
    return 1 if report["gate_failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
