"""Deployment paths side by side: Keras, SavedModel, TFLite fp32/fp16/dynamic/int8, ONNX Runtime, in one run.

Subjects: the demo model (`cnnzoo demo`'s recipe: mobilenet_v2_035 trained on scikit-learn's digits at 32 px,
held-out accuracy on its validation split) and, in full mode, MobileNetV2 and EfficientNetB0 at 224 px (random
weights: nothing downloads here, so they have no accuracy, only agreement with Keras on photos).

Every artifact comes from one `cnnzoo.export(...)` call, so what is timed is what ships. Candidates:
    keras_call       model(x, training=False), eager, float32 input: what a user writes first (the baseline)
    keras_predict    model.predict(x)
    keras_function   cnnzoo's Keras runner: the model inside a tf.function, uint8 in (for reference)
    saved_model      the exported SavedModel's serving_default signature, uint8 in
    tflite_*         ai-edge-litert Interpreter, 2 threads, default delegates (XNNPACK)
    tflite_int8_ref  the int8 file without the default delegates (shows what XNNPACK brings)
    onnx             ONNX Runtime CPU, 2 intra-op threads
Batch-1 latency p50/p95/p99 from rounds of back-to-back calls; batch-32 throughput from interleaved rounds.
Goals (issue #9): int8 TFLite >= 3x faster than keras_call at batch 1 (p50), <= 0.27x the size of the model's
fp32 weights (4 bytes x every model variable; the .keras file of a trained model also holds optimizer slots,
recorded as `sizes_bytes.keras`), <= 1 point accuracy drop on the held-out set. Sizes of the Keras rows are
those fp32 weight bytes.

Usage:
    python benchmarks/bench_deploy.py --quick                    # the demo model untrained, toy rounds
    python benchmarks/bench_deploy.py                            # demo (15 epochs) + MobileNetV2 + EfficientNetB0
    python benchmarks/bench_deploy.py --demo-model saved.keras   # time an already trained digits model
"""
from __future__ import annotations

import gc
import glob
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

from cnnzoo.options import EXPORT_FORMATS as FORMATS  # noqa: E402

THREADS = 2
CANDIDATES = ("keras_call", "keras_predict", "keras_function", "saved_model", "tflite_fp32", "tflite_fp16",
              "tflite_dynamic", "tflite_int8", "tflite_int8_ref", "onnx")
GOALS = {"int8_speedup_min": 3.0, "int8_size_ratio_max": 0.27, "int8_accuracy_drop_max_points": 1.0}


def settings(quick: bool, rounds: int | None) -> dict:
    if quick:
        # No parity checks in quick mode (accuracy and agreement are measured here anyway): it halves the export.
        # Quick mode times an untrained demo model: its paths and sizes are what a check needs, not accuracy.
        return dict(rounds=rounds or 3, block=5, batch=32, demo_epochs=0, zoo=[], calibration=32, holdout=32,
                    parity=False)
    return dict(rounds=rounds or 5, block=20, batch=32, demo_epochs=None, zoo=["mobilenet_v2", "efficientnet_b0"],
                calibration=100, holdout=64, parity="warn")


# ----------------------------------------------------------------------------------------------------------------
# subjects

def demo_subject(epochs: int | None, model_path: str | None, log=print):
    """(model, data, eval images, eval labels) for the demo model; trained here with `cnnzoo demo`'s recipe."""
    import inspect

    import keras

    import cnnzoo
    from cnnzoo.cli.demo import DEFAULT_MODEL, run_demo
    from cnnzoo.data.bundled import digits_rgb

    defaults = {k: p.default for k, p in inspect.signature(run_demo).parameters.items()}
    size = defaults["image_size"]
    x, y, names = digits_rgb(size)
    data = cnnzoo.data.from_arrays(x, y, class_names=names, image_size=(size, size),
                                   batch_size=defaults["batch_size"], validation_split=0.2, seed=defaults["seed"])
    images, labels = _unbatch(data.val)
    if model_path is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        found = sorted((p for p in glob.glob(os.path.join(root, "saved_models", "digits", "*", "model.keras"))
                        if os.path.basename(os.path.dirname(p)).isdigit()),
                       key=lambda p: int(os.path.basename(os.path.dirname(p))))
        model_path = found[-1] if found else None
    if model_path:
        log(f"demo: loading {model_path}")
        model = keras.saving.load_model(model_path, compile=False)
        return model, data, images, labels, {"source": model_path}
    epochs = defaults["epochs"] if epochs is None else epochs
    model = cnnzoo.create_model(DEFAULT_MODEL, num_classes=len(names), input_shape=(size, size, 3))
    if epochs == 0:
        log(f"demo: {DEFAULT_MODEL} at {size} px, untrained (quick mode)")
        return model, data, images, labels, {"source": f"untrained {DEFAULT_MODEL} (quick mode)"}
    log(f"demo: training {DEFAULT_MODEL} on digits at {size} px for {epochs} epochs (cnnzoo demo's recipe)")
    stages = [cnnzoo.Stage("all", epochs=epochs, learning_rate=defaults["learning_rate"], train_bn=True,
                           lr_multipliers=None, schedule="one_cycle")]
    model = cnnzoo.finetune(model, data, stages=stages, augment="none", weights=None, seed=defaults["seed"],
                            verbose=0).model
    return model, data, images, labels, {"source": f"trained here, {DEFAULT_MODEL}, {epochs} epochs"}


def zoo_subject(name: str, calibration: int, holdout: int):
    """(model, representative photos, eval photos, None) for a zoo model at 224 px with random weights."""
    import cnnzoo

    model = cnnzoo.create_model(name, num_classes=1000, input_shape=(224, 224, 3))
    photos = _common.photos(calibration + holdout, 224, seed=1)
    return model, photos, photos[calibration:], None, {"source": f"cnnzoo.create_model({name!r}), random weights"}


def _unbatch(dataset):
    import numpy as np

    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs).astype("uint8"), np.concatenate(ys)


# ----------------------------------------------------------------------------------------------------------------
# candidates

def build_candidates(model, paths: dict) -> dict:
    """name -> callable(uint8 images) -> probabilities [N, classes]."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from cnnzoo.export.runners import KerasRunner, ONNXRunner, SavedModelRunner, TFLiteRunner

    def keras_call(images):
        return model(images.astype("float32"), training=False).numpy()

    def keras_predict(images):
        return model.predict(images.astype("float32"), batch_size=32, verbose=0)

    runners = {"keras_function": KerasRunner(model), "saved_model": SavedModelRunner(paths["saved_model"])}
    for fmt in ("tflite_fp32", "tflite_fp16", "tflite_dynamic", "tflite_int8"):
        runners[fmt] = TFLiteRunner(paths[fmt], num_threads=THREADS)
    reference = TFLiteRunner(paths["tflite_int8"], num_threads=THREADS)
    # TFLiteRunner offers no op-resolver choice: swap in an interpreter without the default delegates.
    reference.interpreter = Interpreter(model_path=str(paths["tflite_int8"]), num_threads=THREADS,
                                        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    reference.interpreter.allocate_tensors()
    reference._input = reference.interpreter.get_input_details()[0]
    reference._output = reference.interpreter.get_output_details()[0]
    runners["tflite_int8_ref"] = reference
    onnx = ONNXRunner(paths["onnx"])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = THREADS, 1
    # ONNXRunner takes no session options: same model, explicit thread count.
    onnx.session = ort.InferenceSession(str(paths["onnx"]), sess_options=options, providers=["CPUExecutionProvider"])
    runners["onnx"] = onnx
    candidates = {"keras_call": keras_call, "keras_predict": keras_predict}
    candidates.update({name: (lambda images, r=r: r.predict(images, batch_size=len(images)))
                       for name, r in runners.items()})
    assert list(candidates) == list(CANDIDATES), list(candidates)
    return candidates


def measure(candidates: dict, images, *, rounds: int, block: int, batch: int, log=print) -> dict:
    import numpy as np

    one = images[:1]
    big = np.resize(images, (batch, *images.shape[1:])) if len(images) < batch else images[:batch]
    latencies = _common.interleaved_latency({k: (lambda f=f: f(one)) for k, f in candidates.items()},
                                            rounds=rounds, block=block, warmup=2)
    seconds = _common.interleaved({k: (lambda f=f: f(big)) for k, f in candidates.items()}, rounds=rounds,
                                  warmup=1, calls=1)
    out = {}
    for name in candidates:
        out[name] = {"batch1": _common.latency_summary(latencies[name]),
                     f"batch{batch}": _common.rate_summary(seconds[name], batch),
                     "batch1_speedup_vs_keras_call": _common.paired_ratio(
                         [float(np.median(s)) for s in latencies["keras_call"]],
                         [float(np.median(s)) for s in latencies[name]]),
                     f"batch{batch}_speedup_vs_keras_call": _common.paired_ratio(seconds["keras_call"],
                                                                                 seconds[name])}
        b1 = out[name]["batch1"]
        log(f"  {name:16s} b1 p50 {b1['p50_ms']:8.2f} ms  p95 {b1['p95_ms']:8.2f}  p99 {b1['p99_ms']:8.2f}   "
            f"b{batch} {out[name][f'batch{batch}']['img_s']:8.1f} img/s   "
            f"x{out[name]['batch1_speedup_vs_keras_call']['ratio']:.2f} vs keras_call")
    return out


def accuracy(candidates: dict, images, labels) -> dict:
    """Held-out accuracy (with labels) and top-1 agreement / max |diff| against keras_call."""
    import numpy as np

    reference = np.concatenate([candidates["keras_call"](images[i:i + 32]) for i in range(0, len(images), 32)])
    out = {}
    for name, fn in candidates.items():
        probs = np.concatenate([fn(images[i:i + 32]) for i in range(0, len(images), 32)])
        row = {"images": int(len(images)),
               "top1_agreement_vs_keras": round(float(np.mean(probs.argmax(-1) == reference.argmax(-1))), 4),
               "max_abs_diff_vs_keras": float(np.abs(probs - reference).max())}
        if labels is not None:
            row["accuracy"] = round(float(np.mean(probs.argmax(-1) == labels)), 4)
            row["accuracy_drop_points"] = round(100.0 * (float(np.mean(reference.argmax(-1) == labels))
                                                         - row["accuracy"]), 2)
        out[name] = row
    return out


def run_subject(label: str, model, representative, images, labels, meta: dict, config: dict, log=print) -> dict:
    import numpy as np

    import cnnzoo

    workdir = tempfile.mkdtemp(prefix=f"cnnzoo-bench-deploy-{label}-")
    try:
        started = time.perf_counter()
        report = cnnzoo.export(model, workdir, formats=FORMATS, representative_data=representative,
                               parity=config["parity"],
                               calibration_images=config["calibration"], holdout_images=config["holdout"],
                               latency_repeats=1, name=label)
        export_seconds = time.perf_counter() - started
        log(f"{label}: exported {len(report.paths)} formats in {export_seconds:.0f} s")
        candidates = build_candidates(model, report.paths)
        timing = measure(candidates, images, rounds=config["rounds"], block=config["block"],
                         batch=config["batch"], log=log)
        quality = accuracy(candidates, images, labels)
        sizes = {fmt: int(size) for fmt, size in report.sizes.items()}
        # The size baseline is the fp32 weights alone (every variable, BN statistics included): a trained
        # model's .keras file (and even save_weights) also holds the optimizer's slots, which would flatter
        # every other format.
        sizes["fp32_weights"] = int(sum(int(np.prod(v.shape)) * 4 for v in model.weights))
        int8_parts = tflite_size_breakdown(report.paths["tflite_int8"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    size_of = {"keras_call": "fp32_weights", "keras_predict": "fp32_weights", "keras_function": "fp32_weights",
               "tflite_int8_ref": "tflite_int8"}
    for name in timing:
        fmt = size_of.get(name, name)
        timing[name]["size_bytes"] = sizes.get(fmt)
        timing[name]["size_vs_fp32_weights"] = round(sizes[fmt] / sizes["fp32_weights"], 4) if fmt in sizes else None
        timing[name].update(quality[name])
    int8 = timing["tflite_int8"]
    goals = {"int8_speedup_ge_3x": int8["batch1_speedup_vs_keras_call"]["ratio"] >= GOALS["int8_speedup_min"],
             "int8_size_le_0.27x": int8["size_vs_fp32_weights"] <= GOALS["int8_size_ratio_max"]}
    # What no int8 file of this model can go below: its tensors plus their quantization parameters.
    int8_parts["floor_vs_fp32_weights"] = round(int8_parts["floor_bytes"] / sizes["fp32_weights"], 4)
    if labels is not None:
        goals["int8_accuracy_drop_le_1pt"] = int8["accuracy_drop_points"] <= GOALS["int8_accuracy_drop_max_points"]
    log(f"{label}: goals {goals}")
    return {"model": model.name, "input_size": list(images.shape[1:3]), "params": model.count_params(),
            "sizes_bytes": sizes, "int8_size_breakdown": int8_parts,
            **meta, "export_seconds": round(export_seconds, 1), "parity": report.parity, "candidates": timing,
            "goals": goals}


def tflite_size_breakdown(path) -> dict:
    """Where the bytes of a .tflite file go: constant tensors by type, quantization parameters, the rest.

    Per-channel int8 stores, for every output channel of every weight and bias tensor, a float32 scale and an
    int64 zero point (12 bytes each, twice): negligible for MobileNetV2 at 1.0 width, a tenth of the fp32 size
    for the demo's 0.35-width model, whose 0.42 M parameters are spread over ~14 k channels.
    """
    import collections
    import os

    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    names = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 9: "int8"}
    tensors: dict = collections.Counter()
    quant_bytes = channels = 0
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            data = model.buffers[tensor.buffer].data
            size = 0 if data is None else len(data)
            tensors[names.get(tensor.type, str(tensor.type))] += size
            q = tensor.quantization
            if q is not None and q.scale is not None:
                quant_bytes += len(q.scale) * 4 + (0 if q.zeroPoint is None else len(q.zeroPoint) * 8)
                channels += len(q.scale) if size else 0
    metadata = sum(len(model.buffers[m.buffer].data) for m in (model.metadata or [])
                   if model.buffers[m.buffer].data is not None)
    total = os.path.getsize(path)
    tensor_bytes = sum(tensors.values())
    return {"file_bytes": total, "tensor_bytes": dict(tensors), "quantization_param_bytes": quant_bytes,
            "quantized_constant_channels": channels, "metadata_bytes": metadata,
            "graph_bytes": total - tensor_bytes - quant_bytes - metadata,
            "floor_bytes": tensor_bytes + quant_bytes}


def main(argv=None, log=print) -> dict:
    p = _common.parser(__doc__.splitlines()[0], "bench_deploy.json")
    p.add_argument("--demo-model", default=None, help="a trained digits .keras model to time instead of training")
    p.add_argument("--demo-epochs", type=int, default=None, help="training epochs for the demo model")
    args = p.parse_args(argv)
    config = settings(args.quick, args.rounds)
    started = time.perf_counter()
    import keras

    info = _common.machine_info()
    subjects = {}
    epochs = config["demo_epochs"] if args.demo_epochs is None else args.demo_epochs
    model, data, images, labels, meta = demo_subject(epochs, args.demo_model, log=log)
    subjects["demo"] = run_subject("demo", model, data, images, labels, meta, config, log=log)
    for name in config["zoo"]:
        del model
        keras.backend.clear_session()
        gc.collect()
        model, representative, images, labels, meta = zoo_subject(name, config["calibration"], config["holdout"])
        subjects[name] = run_subject(name, model, representative, images, labels, meta, config, log=log)
    report = {"benchmark": "deploy", "quick": args.quick, "rounds": config["rounds"],
              "batch1_calls_per_round": config["block"], "batch": config["batch"],
              "threads": {"tflite": THREADS, "onnxruntime_intra_op": THREADS,
                          "tensorflow": "default (one per usable CPU)"},
              "goal_thresholds": GOALS, "subjects": subjects, "machine": info,
              "load_average_end": _common.load_average(), "seconds": round(time.perf_counter() - started, 1)}
    _common.write_json(args.out, report)
    log(f"wrote {args.out}")
    return report


def markdown(report: dict) -> str:
    parts = []
    batch = report["batch"]
    for label, subject in report["subjects"].items():
        rows = []
        fp32_file = subject.get("sizes_bytes", {}).get("tflite_fp32")
        for name, c in subject["candidates"].items():
            size = c["size_bytes"]
            rows.append([name, c["batch1"]["p50_ms"], c["batch1"]["p95_ms"], c["batch1"]["p99_ms"],
                         f"x{c['batch1_speedup_vs_keras_call']['ratio']:.2f}", c[f"batch{batch}"]["img_s"],
                         None if size is None else round(size / 1e6, 2), c["size_vs_fp32_weights"],
                         None if size is None or not fp32_file else round(size / fp32_file, 3),
                         c.get("accuracy"), c.get("top1_agreement_vs_keras")])
        goals = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in subject["goals"].items())
        note = "" if subject["candidates"]["keras_call"].get("accuracy") is not None else (
            " Random weights: outputs are close to uniform, so top-1 agreement says little (a tie broken "
            "differently flips it); see max |diff| in the JSON.")
        parts.append(f"**{label}** ({subject['source']}, {subject['input_size'][0]} px, "
                     f"{subject['params']:,} parameters). Goals: {goals}.{note}\n\n" + _common.table(
                         rows, ["candidate", "b1 p50 ms", "p95", "p99", "b1 speedup", f"b{batch} img/s", "MB",
                                "size / fp32 weights", "size / tflite fp32", "accuracy", "top-1 = keras"])
                     + _size_note(subject))
    return "\n\n".join(parts)


def _size_note(subject: dict) -> str:
    parts = subject.get("int8_size_breakdown")
    if not parts:
        return ""
    t = parts["tensor_bytes"]
    text = (f"\n\nint8 file {parts['file_bytes'] / 1e6:.2f} MB = int8 tensors {t.get('int8', 0) / 1e6:.3f} MB + int32 "
            f"biases {t.get('int32', 0) / 1e6:.3f} MB + per-channel scales and zero points "
            f"{parts['quantization_param_bytes'] / 1e6:.3f} MB ({parts['quantized_constant_channels']:,} channels) + "
            f"graph {parts['graph_bytes'] / 1e6:.3f} MB + metadata {parts['metadata_bytes'] / 1e3:.1f} kB. "
            f"Floor (tensors + quantization parameters): {parts['floor_vs_fp32_weights']:.3f}x the fp32 weights")
    if parts["floor_vs_fp32_weights"] > GOALS["int8_size_ratio_max"]:
        text += (f", above the {GOALS['int8_size_ratio_max']}x goal: no per-channel int8 TFLite file of this model "
                 "can meet it (the format stores a float32 scale and an int64 zero point per output channel of "
                 "every weight and bias tensor)")
    return text + "."


def chart(report: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subjects = report["subjects"]
    batch = report["batch"]
    fig, axes = plt.subplots(len(subjects), 3, figsize=(13, 3.2 * len(subjects)), squeeze=False)
    for row, (label, subject) in enumerate(subjects.items()):
        names = list(subject["candidates"])
        c = subject["candidates"]
        panels = [([c[n]["batch1"]["p50_ms"] for n in names], "batch-1 p50 latency (ms, log)", True),
                  ([c[n][f"batch{batch}"]["img_s"] for n in names], f"batch-{batch} img/s", False),
                  ([(c[n]["size_bytes"] or 0) / 1e6 for n in names], "size (MB; keras: fp32 weights)", False)]
        for col, (values, title, log_scale) in enumerate(panels):
            ax = axes[row][col]
            colors = ["tab:orange" if n.startswith("keras") else "tab:blue" for n in names]
            ax.barh(range(len(names)), values, color=colors)
            ax.set_yticks(range(len(names)), names, fontsize=7)
            ax.invert_yaxis()
            if log_scale:
                ax.set_xscale("log")
            ax.set_title(f"{label}: {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
