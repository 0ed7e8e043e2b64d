"""`cnnzoo demo`: the whole toolkit on real data in a few minutes — train, evaluate, export, explain how to serve.

Default data: scikit-learn's handwritten digits (1,797 real 8x8 scans, shipped with the package) upsampled to
32x32 RGB. `--data DIR` runs the same on a folder of images (one subfolder per class).

Example:
    $ cnnzoo demo                      # -> saved_models/digits/<version>/
    $ cnnzoo demo --data photos/ --model resnet18 --image-size 64
"""
from __future__ import annotations

import json
import time
from pathlib import Path

DEFAULT_MODEL = "mobilenet_v2_035"


def run_demo(*, data_dir: str | None = None, out_dir: str = "saved_models", model_name: str = DEFAULT_MODEL,
             image_size: int = 48, epochs: int = 15, batch_size: int = 32, learning_rate: float = 1e-2,
             weights: str | None = None, name: str | None = None, seed: int = 0, parity: bool | str = True,
             log=print) -> dict:
    """Train `model_name` on the data, evaluate it, export SavedModel + TFLite int8 + ONNX; returns a summary.

    Without pretrained weights (the default: nothing downloads) every group trains from the start in one
    stage; with `weights` ("imagenet" or a file) it is the two-stage fine-tune recipe (head, then top groups).
    """
    import cnnzoo
    from cnnzoo.data.bundled import digits_rgb

    started = time.perf_counter()
    if data_dir is None:
        x, y, class_names = digits_rgb(image_size)
        data = cnnzoo.data.from_arrays(x, y, class_names=class_names, image_size=(image_size, image_size),
                                       batch_size=batch_size, validation_split=0.2, seed=seed)
        name = name or "digits"
        log(f"data: scikit-learn digits, {len(y)} real images, {len(class_names)} classes, "
            f"upsampled to {image_size}x{image_size} RGB")
    else:
        data = cnnzoo.data.from_directory(data_dir, image_size=(image_size, image_size), batch_size=batch_size,
                                          validation_split=0.2, seed=seed)
        name = name or Path(data_dir).resolve().name
        log(f"data: {data_dir}, {data.num_classes} classes {data.class_counts}, {len(data.skipped)} skipped")

    model = cnnzoo.create_model(model_name, num_classes=data.num_classes, input_shape=(image_size, image_size, 3),
                                weights=weights)
    log(f"model: {model_name}, {model.count_params():,} parameters")
    if weights is None:
        stages = [cnnzoo.Stage("all", epochs=epochs, learning_rate=learning_rate, train_bn=True,
                               lr_multipliers=None, schedule="one_cycle")]
    else:
        stages = cnnzoo.train.default_stages(head_epochs=max(1, epochs // 3), tune_epochs=max(1, epochs - epochs // 3),
                                             learning_rate=learning_rate)
    result = cnnzoo.finetune(model, data, stages=stages, augment="none", weights=None, seed=seed, verbose=2)
    model = result.model

    report = cnnzoo.evaluate(model, data)
    log(f"held-out accuracy: {report.accuracy:.4f} (top-5 {report.top_k.get(5, float('nan')):.4f}, "
        f"ECE {report.ece:.4f})")

    export_root = Path(out_dir) / name
    exported = cnnzoo.export(model, export_root, formats=cnnzoo.export.DEFAULT_FORMATS,
                             class_names=data.class_names, representative_data=data,
                             metrics={"accuracy": report.accuracy, "ece": report.ece},
                             name=name, parity=parity)
    cm_path = exported.directory / "confusion_matrix.png"
    _figure(report.plot_confusion_matrix()).savefig(cm_path, dpi=80, bbox_inches="tight")

    summary = {
        "model": model_name, "name": name, "accuracy": report.accuracy, "ece": report.ece,
        "export_dir": str(exported.directory), "paths": {k: str(v) for k, v in exported.paths.items()},
        "sizes": exported.sizes, "parity": exported.parity, "confusion_matrix": str(cm_path),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log(f"exported to {exported.directory}:")
    for fmt, path in exported.paths.items():
        log(f"  {fmt:12s} {path}  ({exported.sizes.get(fmt, 0) / 1e6:.2f} MB)  parity {_parity_line(exported.parity.get(fmt, {}))}")
    log(f"confusion matrix: {cm_path}")
    log("serve it with TF Serving:\n"
        f"  docker run -p 8501:8501 -v {Path(out_dir).resolve() / name}:/models/{name} -e MODEL_NAME={name} "
        f"tensorflow/serving\n"
        f"  python -c \"import cnnzoo; print(cnnzoo.serving.Client('http://localhost:8501/v1/models/{name}')"
        f".predict_bytes(open('digit.png', 'rb').read()))\"")
    log(f"done in {summary['seconds']} s")
    return summary


def _figure(plot):
    """plot_* helpers return an Axes or a Figure; both lead to the Figure."""
    return getattr(plot, "figure", plot)


def _parity_line(figures: dict) -> str:
    shown = {k: figures[k] for k in ("max_abs_diff", "top1_agreement", "accuracy_drop_points", "passed")
             if k in figures}
    return json.dumps(shown, default=float)
