"""The thin command functions behind `cnnzoo train | finetune | evaluate | export | predict`.

Each takes the parsed arguments, calls the public API, and prints a table or JSON. User mistakes raise
`UsageError` (exit 2, one line); everything else is a real error.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from cnnzoo.cli.errors import UsageError


def load_data(source: str, *, image_size: int, batch_size: int, validation_split: float = 0.2, seed: int = 0,
              data_dir: str | None = None, sampling: str = "shuffle"):
    """A folder of class subfolders, or `tfds:NAME` read from a local TFDS `data_dir`."""
    import cnnzoo

    size = (image_size, image_size)
    try:
        if source.startswith("tfds:"):
            data = cnnzoo.data.from_tfds(source[5:], data_dir=data_dir, image_size=size, batch_size=batch_size,
                                         validation_split=validation_split, seed=seed)
            return data.balanced(seed=seed) if sampling == "balanced" else data
        if not os.path.isdir(source):
            raise UsageError(f"data must be a folder of class subfolders or tfds:NAME. Received: data={source!r}")
        return cnnzoo.data.from_directory(source, image_size=size, batch_size=batch_size,
                                          validation_split=validation_split, seed=seed, sampling=sampling)
    except ValueError as error:  # empty folder, one class, unprepared TFDS data: the user's to fix
        raise UsageError(str(error)) from None


def load_keras_model(path: str):
    from cnnzoo.export.runners import load_keras_file

    if not os.path.isfile(path) or not path.endswith(".keras"):
        raise UsageError(f"model must be a .keras file. Received: model={path!r}")
    return load_keras_file(path, name="model")


def cmd_train(args, *, finetune: bool) -> int:
    import cnnzoo

    data = load_data(args.data, image_size=args.image_size, batch_size=args.batch_size, seed=args.seed,
                     data_dir=args.data_dir, sampling=args.sampling)
    recipe = dict(class_weight=args.class_weight, loss=args.loss, focal_gamma=args.focal_gamma, ema=args.ema,
                  accumulate=args.accumulate)
    try:
        model = cnnzoo.create_model(args.model, num_classes=data.num_classes,
                                    input_shape=(args.image_size, args.image_size, 3), weights=args.weights,
                                    dropout=args.dropout)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    verbose = 0 if args.json else 2
    if finetune:
        stages = [cnnzoo.Stage("head", epochs=args.head_epochs, learning_rate=args.learning_rate, **recipe),
                  cnnzoo.Stage(args.unfreeze if args.unfreeze != "all" else "all", epochs=args.epochs,
                               learning_rate=args.learning_rate * args.tune_lr_factor, train_bn=args.train_bn,
                               **recipe)]
        result = cnnzoo.finetune(model, data, stages=stages, augment=args.augment, weights=None,
                                 checkpoint_dir=args.checkpoint_dir, seed=args.seed, verbose=verbose)
    else:
        result = cnnzoo.train.fit(model, data, epochs=args.epochs, learning_rate=args.learning_rate,
                                  optimizer=args.optimizer, schedule=args.schedule, augment=args.augment,
                                  checkpoint_dir=args.checkpoint_dir, seed=args.seed, verbose=verbose, **recipe)
    report = cnnzoo.evaluate(result.model, data)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    result.model.save(args.out)
    summary = {"model": args.model, "saved": args.out, "accuracy": report.accuracy, "ece": report.ece,
               "classes": data.class_names, "skipped_files": len(data.skipped)}
    print(json.dumps(summary) if args.json else
          f"saved {args.out}\nheld-out accuracy {report.accuracy:.4f}, ECE {report.ece:.4f}")
    return 0


def cmd_evaluate(args) -> int:
    import cnnzoo

    model = load_keras_model(args.model)
    size = model.input_shape[1] or args.image_size
    data = load_data(args.data, image_size=size, batch_size=args.batch_size, seed=args.seed,
                     data_dir=args.data_dir, validation_split=args.validation_split)
    try:
        report = cnnzoo.evaluate(model, data, tta=args.tta)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.plots:
        os.makedirs(args.plots, exist_ok=True)
        _figure(report.plot_confusion_matrix()).savefig(os.path.join(args.plots, "confusion_matrix.png"))
        _figure(report.plot_reliability()).savefig(os.path.join(args.plots, "reliability.png"))
    data_out = report.to_dict()
    if args.json:
        print(json.dumps(data_out, default=_jsonable))
    else:
        tta = (f"  (TTA {'+'.join(report.tta)}; {report.accuracy_without_tta:.4f} without)"
               if report.tta else "")
        print(f"accuracy {report.accuracy:.4f}{tta}  balanced accuracy {report.balanced_accuracy:.4f}  "
              f"macro-F1 {report.macro_f1:.4f}  ECE {report.ece:.4f}  " +
              "  ".join(f"top-{k} {v:.4f}" for k, v in report.top_k.items()))
        print(report.per_class.to_string() if hasattr(report.per_class, "to_string") else report.per_class)
    return 0


def cmd_export(args) -> int:
    import cnnzoo

    model = load_keras_model(args.model)
    representative = None
    if args.data:
        size = model.input_shape[1] or args.image_size
        representative = load_data(args.data, image_size=size, batch_size=32, seed=args.seed,
                                   data_dir=args.data_dir)
    elif "tflite_int8" in args.formats:
        raise UsageError("tflite_int8 needs calibration images: pass --data DIR (or leave tflite_int8 out). "
                         "Received: --data=None")
    try:
        report = cnnzoo.export(model, args.out, formats=tuple(args.formats), representative_data=representative,
                               version=args.version, parity="warn" if args.parity_warn else True, tta=args.tta)
    except (ValueError, FileExistsError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps({"directory": str(report.directory), "paths": {k: str(v) for k, v in report.paths.items()},
                          "sizes": report.sizes, "parity": report.parity}, default=_jsonable))
    else:
        print(report.summary() if hasattr(report, "summary") else report)
    return 0


def read_images(paths: list[str], size, fit: str = "stretch"):
    """uint8 [N, *size, 3]: the files read with training's checks, decode rule and resize (cnnzoo.data.images)."""
    from PIL import Image

    from cnnzoo.data.images import read_images as read_files

    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"image not found. Received: image={path!r}")
    if size is None:   # a model without a recorded input size: the first image's own size
        with Image.open(paths[0]) as image:
            size = image.size[::-1]
    images, _, skipped = read_files(paths, tuple(size), fit)
    if skipped:
        path, reason = skipped[0]
        raise UsageError(f"not a readable image ({reason}). Received: image={path!r}")
    return images


def cmd_predict(args) -> int:
    import numpy as np

    from cnnzoo.export.runners import load_runner

    if not os.path.exists(args.model):
        raise UsageError(f"model not found. Received: --model={args.model!r}")
    try:
        runner = load_runner(args.model)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if runner.task == "segmentation":
        return _predict_masks(runner, args)
    probabilities = runner.predict(read_images(args.images, runner.input_size, runner.fit))
    names = runner.class_names or [str(i) for i in range(probabilities.shape[-1])]
    k = min(args.top_k, probabilities.shape[-1])
    rows = []
    for path, p in zip(args.images, probabilities):
        top = np.argsort(-p)[:k]
        rows.append({"image": path, "top": [{"class": names[i], "probability": float(p[i])} for i in top]})
        if runner.task == "multilabel":   # every class at or above its exported threshold
            rows[-1]["labels"] = [names[i] for i in np.flatnonzero(p >= runner.thresholds)]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            labels = f"  labels: {', '.join(row['labels']) or '(none)'}" if "labels" in row else ""
            print(row["image"] + "  " + "  ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
                  + labels)
    return 0


def _predict_masks(runner, args) -> int:
    """A segmenter: one palette PNG of class ids per image, at the image's own size, in --output-dir."""
    import numpy as np
    from PIL import Image, ImageOps

    from cnnzoo.data.masks import write_mask

    out_dir = Path(args.output_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--output-dir is a file. Received: --output-dir={args.output_dir!r}")
    rows, used = [], set()
    for path in args.images:
        if not os.path.isfile(path):
            raise UsageError(f"image not found. Received: image={path!r}")
        try:
            with Image.open(path) as image:   # the size after EXIF orientation, as the decode rule turns it
                size = ImageOps.exif_transpose(image).size[::-1]
        except (OSError, ValueError) as error:
            raise UsageError(f"not a readable image ({type(error).__name__}). Received: image={path!r}") from None
        mask = runner.predict_masks(read_images([path], size, "stretch"))[0]
        stem = Path(path).stem
        name, k = f"{stem}_mask.png", 1
        while name in used:   # same file name from two folders
            name, k = f"{stem}_{k}_mask.png", k + 1
        used.add(name)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = write_mask(out_dir / name, mask, len(runner.class_names or []) or int(mask.max()) + 1)
        names = runner.class_names or [str(i) for i in range(int(mask.max()) + 1)]
        ids, counts = np.unique(mask, return_counts=True)
        shares = {names[i]: round(float(c) / mask.size, 4) for i, c in sorted(zip(ids, counts), key=lambda t: -t[1])}
        rows.append({"image": path, "mask": target, "size": list(size), "classes": shares})
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(f"{row['image']}  ->  {row['mask']}  " + "  ".join(f"{c} {v:.1%}" for c, v in row["classes"].items()))
    return 0


def cmd_tune(args) -> int:
    import cnnzoo

    data = load_data(args.data, image_size=args.image_size, batch_size=args.batch_size, seed=args.seed,
                     data_dir=args.data_dir, validation_split=args.validation_split)
    try:
        result = cnnzoo.tune.search(
            data, models=tuple(m.strip() for m in args.models.split(",") if m.strip()), tuner=args.tuner,
            max_trials=args.max_trials, epochs=args.epochs, objective=args.objective, directory=args.directory,
            project_name=args.project_name, overwrite=args.overwrite, seed=args.seed,
            space=cnnzoo.tune.parse_space(args.space or []), weights=args.weights,
            early_stopping=None if args.no_early_stopping else args.early_stopping, refit=args.refit,
            verbose=0 if args.json else "auto")
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    if args.output:
        result.best_model.save(args.output)
    if args.json:
        print(json.dumps({"leaderboard": result.leaderboard.to_dict(orient="records"),
                          "best": result.best_hyperparameters.values, "output": args.output}, default=_jsonable))
    else:
        print(result.leaderboard.to_string(index=False))
        if args.output:
            print(f"best model saved to {args.output}")
    return 0


def _figure(plot):
    return getattr(plot, "figure", plot)


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return str(value)
