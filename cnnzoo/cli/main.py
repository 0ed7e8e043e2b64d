"""`cnnzoo` command line: one sub-command per verb; user errors exit 2 with one line, no traceback.

Example:
    $ cnnzoo list "resnet*"
    $ cnnzoo info efficientnet_b0 --json
    $ cnnzoo demo
    $ cnnzoo predict digit.png --model saved_models/digits
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys

from cnnzoo import options
from cnnzoo.cli import quiet
from cnnzoo.cli.demo import DEFAULT_MODEL  # small enough to commit its export (a few MB), ~98 % on digits
from cnnzoo.cli.errors import UsageError, is_user_error, one_line
from cnnzoo.cli.validate_args import add_validate_arguments

EXPORT_FORMATS = options.EXPORT_FORMATS  # the library's lists: one definition (cnnzoo/options.py)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) if rows else len(c) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


def cmd_list(args) -> int:
    import cnnzoo

    names = cnnzoo.list_models(args.pattern)
    if not (args.long or args.families):
        print(json.dumps(names) if args.json else "\n".join(names) if names else
              f"no model matches {args.pattern!r}")
        return 0
    from cnnzoo.models.figures import family_table, zoo_table

    rows = family_table(args.pattern) if args.families else zoo_table(args.pattern)
    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print(f"no model matches {args.pattern!r}")
    elif args.families:
        _print_table([{"family": r["family"], "models": r["models"],
                       "params (M)": _span(r["params"], 1e6, ".1f"), "MACs (G)": _span(r["macs"], 1e9, ".2f"),
                       "size": _span(r["default_input_size"], 1, "d"), "paper": r["paper"]} for r in rows],
                     ["family", "models", "params (M)", "MACs (G)", "size", "paper"])
    else:
        _print_table([{"name": r["name"], "family": r["family"], "params": f"{r['params']:,}",
                       "MACs (G)": f"{r['macs'] / 1e9:.3f}", "size": r["default_input_size"], "paper": r["paper"]}
                      for r in rows], ["name", "family", "params", "MACs (G)", "size", "paper"])
    return 0


def _span(pair, unit, spec) -> str:
    low, high = (format(v / unit if unit != 1 else v, spec) for v in pair)
    return low if low == high else f"{low}-{high}"


def cmd_info(args) -> int:
    import dataclasses

    import cnnzoo

    try:
        info = cnnzoo.model_info(args.name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    data = dataclasses.asdict(info)
    if args.json:
        print(json.dumps(data))
    else:
        data["params"] = f"{info.params:,}"
        data["macs"] = f"{info.macs / 1e9:.3f} G"
        _print_table([data], list(data))
    return 0


def cmd_demo(args) -> int:
    from cnnzoo.cli.demo import run_demo

    if args.data is not None and not os.path.isdir(args.data):
        raise UsageError(f"--data must be a folder of class subfolders. Received: --data={args.data!r}")
    summary = run_demo(data_dir=args.data, out_dir=args.out, model_name=args.model, image_size=args.image_size,
                       epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                       weights=args.weights, seed=args.seed, parity="warn" if args.parity_warn else True,
                       log=(lambda *a: None) if args.json else print)
    if args.json:
        print(json.dumps(summary, default=str))
    return 0


def cmd_bench(args) -> int:
    from cnnzoo.bench import run_benchmarks

    try:
        report = run_benchmarks(quick=args.quick, out_dir=args.out, only=args.only,
                                benchmarks_dir=args.benchmarks_dir, log=(lambda *a: None) if args.json else print)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None
    if args.json:
        print(json.dumps({k: report.get(k) for k in ("goals", "failed", "missing", "files")}, default=str))
    return 1 if report.get("failed") else 0


def cmd_validate(args) -> int:
    from cnnzoo.validate.cli import run

    try:
        return run(args)  # 0 passed, 1 a check failed
    except (ValueError, TypeError) as error:
        raise UsageError(str(error)) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _unfreeze(text: str):
    if text in ("head", "all"):
        return text
    return _positive_int(text)


def _weights(text: str):
    """'none' (any case) means no weights, as the help says; anything else goes to create_model as is."""
    return None if text.strip().lower() == "none" else text


def _add_flags(parser, *, default) -> None:
    # On the main parser (default False) and again on every sub-command (default SUPPRESS, so a flag given
    # before the sub-command is not reset): `cnnzoo --debug train ...` and `cnnzoo train ... --debug` both work.
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show full tracebacks and TensorFlow's own log lines")
    parser.add_argument("--verbose", action="store_true", default=default,
                        help="show TensorFlow's own log lines and cnnzoo's progress logs")


def _data_args(p, *, image_size=True):
    p.add_argument("data", help="a folder with one subfolder per class, or tfds:NAME")
    p.add_argument("--data-dir", default=None, help="local TFDS data_dir (for tfds:NAME)")
    if image_size:
        p.add_argument("--image-size", type=_positive_int, default=224, help="pixels (default: 224)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--seed", type=int, default=0)


def _ema(text: str) -> float:
    value = _positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected an EMA momentum in (0, 1) such as 0.999, got {text!r}")
    return value


def _recipe_args(p):
    """Training for real data (cnnzoo.train.fit's class_weight, loss, ema, accumulate; the data's sampling)."""
    p.add_argument("--class-weight", default=None, choices=("balanced",),
                   help="weigh each class's loss by n / (classes * count) (default: none)")
    p.add_argument("--sampling", default="shuffle", choices=("shuffle", "balanced"),
                   help="balanced: draw every class equally often (instead of --class-weight)")
    p.add_argument("--loss", default="auto", choices=("auto", "focal"), help="focal: focal loss, --focal-gamma")
    p.add_argument("--focal-gamma", type=float, default=2.0)
    p.add_argument("--ema", type=_ema, default=None, help="keep an EMA of the weights, e.g. 0.999, and end with it")
    p.add_argument("--accumulate", type=_positive_int, default=1, help="batches per optimizer step")


def _tta_arg(p, views, what):
    p.add_argument("--tta", nargs="+", default=None, choices=views, metavar="VIEW",
                   help=f"test-time augmentation {what}: {' '.join(views)}")


def _train_args(p, *, finetune: bool):
    _data_args(p)
    p.add_argument("--model", required=True, help="zoo model name (see `cnnzoo list`)")
    p.add_argument("--weights", type=_weights, default="imagenet" if finetune else None,
                   help="'imagenet', a weights file, or 'none'" + (" (default: imagenet)" if finetune else ""))
    p.add_argument("--epochs", type=_positive_int, default=5 if finetune else 10)
    p.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    p.add_argument("--dropout", type=float, default=None)
    p.add_argument("--augment", default="standard", choices=options.AUGMENT_POLICIES)
    p.add_argument("--checkpoint-dir", default=None, help="save every epoch; rerun to resume")
    p.add_argument("--out", default="model.keras", help="where to save the trained model (.keras)")
    p.add_argument("--json", action="store_true")
    _recipe_args(p)
    if finetune:
        p.add_argument("--head-epochs", type=_positive_int, default=2, help="stage 1: head only")
        p.add_argument("--unfreeze", type=_unfreeze, default=3, help="stage 2: top groups to train, or all")
        p.add_argument("--tune-lr-factor", type=_positive_float, default=0.3, help="stage 2 rate factor")
        p.add_argument("--train-bn", action="store_true", help="let BatchNorm statistics update in stage 2")
    else:
        p.add_argument("--optimizer", default="adamw", choices=options.OPTIMIZER_NAMES)
        p.add_argument("--schedule", default="cosine", choices=options.SCHEDULE_NAMES)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnzoo", description="Keras 3 CNN model zoo and transfer-learning toolkit.")
    _add_flags(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-l", "--long", action="store_true",
                   help="one row per model: family, params, MACs, default size, paper")
    p.add_argument("--families", action="store_true", help="one row per family: models, params, MACs, sizes, paper")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="params, MACs, default input size and paper of a model")
    p.add_argument("name", help="a name from `cnnzoo list`")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="train a zoo model on bundled real data (digits), evaluate, export")
    p.add_argument("--data", default=None, help="a folder of images, one subfolder per class (default: digits)")
    p.add_argument("--out", default="saved_models", help="export base directory (default: saved_models)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"zoo model name (default: {DEFAULT_MODEL})")
    p.add_argument("--image-size", type=_positive_int, default=48, help="training size in pixels (default: 48)")
    p.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default: 15)")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--learning-rate", type=_positive_float, default=1e-2, help="peak rate (one-cycle schedule)")
    p.add_argument("--weights", type=_weights, default=None,
                   help="'imagenet' or a weights file: fine-tune instead of training (default: none)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--parity-warn", action="store_true",
                   help="write the export even if a format fails its parity check (recorded in the card)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_demo)

    from cnnzoo.cli import commands

    p = sub.add_parser("train", help="train a zoo model on a folder or TFDS dataset, save .keras")
    _train_args(p, finetune=False)
    p.set_defaults(func=lambda a: commands.cmd_train(a, finetune=False))

    p = sub.add_parser("finetune", help="fine-tune a pretrained zoo model (head, then top groups), save .keras")
    _train_args(p, finetune=True)
    p.set_defaults(func=lambda a: commands.cmd_train(a, finetune=True))

    p = sub.add_parser("evaluate", help="accuracy, per-class report, confusion matrix and ECE of a .keras model")
    p.add_argument("model", help="a .keras file")
    _data_args(p)
    p.add_argument("--validation-split", type=float, default=0.2, help="part of the data to evaluate on")
    p.add_argument("--plots", default=None, help="folder for confusion_matrix.png and reliability.png")
    _tta_arg(p, options.TTA_VIEWS, "(probabilities averaged over the views)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("export", help="export a .keras model: SavedModel (TF Serving), TFLite, ONNX")
    p.add_argument("model", help="a .keras file")
    p.add_argument("out", help="TF Serving model base path; the export goes to OUT/<version>/")
    p.add_argument("--formats", nargs="+", default=list(options.DEFAULT_EXPORT_FORMATS), choices=EXPORT_FORMATS)
    p.add_argument("--data", default=None, help="calibration / parity images: a folder or tfds:NAME")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--image-size", type=_positive_int, default=224)
    p.add_argument("--version", type=_positive_int, default=None)
    p.add_argument("--parity-warn", action="store_true", help="write even if a parity check fails")
    _tta_arg(p, options.EXPORT_TTA_VIEWS, "inside the exported graph")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("predict", help="classify images (or segment them: mask PNGs) with a SavedModel, .tflite, "
                                       ".onnx or .keras model")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", required=True, help="export dir, SavedModel dir, .tflite, .onnx or .keras")
    p.add_argument("--top-k", type=_positive_int, default=3)
    p.add_argument("--output-dir", default="masks",
                   help="segmenters: where the mask PNGs go (<image stem>_mask.png, class ids as palette indices)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_predict)

    p = sub.add_parser("tune", help="KerasTuner search over zoo models and the training recipe")
    _data_args(p)
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--models", default="mobilenet_v2,resnet18,efficientnet",
                   help="comma-separated zoo names or families (default: mobilenet_v2,resnet18,efficientnet)")
    p.add_argument("--tuner", default="hyperband", choices=options.TUNERS)
    p.add_argument("--max-trials", type=_positive_int, default=None)
    p.add_argument("--epochs", type=_positive_int, default=10)
    p.add_argument("--objective", default="val_accuracy")
    p.add_argument("--directory", default="cnnzoo_tune")
    p.add_argument("--project-name", default="search")
    p.add_argument("--overwrite", action="store_true", help="start afresh instead of resuming")
    p.add_argument("--space", nargs="*", metavar="NAME=VALUE",
                   help="fix or narrow: learning_rate=3e-3, dropout=(0.0,0.5), augment=[none,light]")
    p.add_argument("--weights", type=_weights, default=None,
                   help="'imagenet' or a file: tune fine-tuning depth too (default: none)")
    p.add_argument("--early-stopping", type=_positive_int, default=3)
    p.add_argument("--no-early-stopping", action="store_true")
    p.add_argument("--refit", action="store_true", help="retrain the best configuration at the end")
    p.add_argument("--output", default=None, help="save the best model here (.keras)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_tune)

    bench_note = ("needs a source checkout: runs benchmarks/run.py of a cnnzoo clone (`pip install cnnzoo` does not "
                  "install benchmarks/)")
    p = sub.add_parser("bench", help=f"benchmarks: zoo vs keras.applications, deployment paths, precision, data; "
                                     f"{bench_note}", description=f"Run the benchmarks; {bench_note}.")
    p.add_argument("--benchmarks-dir", default=None,
                   help="the benchmarks/ folder of a cnnzoo clone (default: the one beside this package)")
    p.add_argument("--quick", action="store_true", help="toy sizes: checks everything runs (< 5 min)")
    p.add_argument("--out", default=None, help="results folder (default: benchmarks/results/)")
    p.add_argument("--only", default=None, help="comma-separated: zoo,deploy,precision,data,finetune")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("validate", help="validate a model or export: golden, consistency, latency, calibration, "
                                        "drift (exit 1 when a check fails)")
    add_validate_arguments(p)
    p.set_defaults(func=cmd_validate)
    for command in sub.choices.values():
        _add_flags(command, default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 success, 1 a failed check or a bug (traceback), 2 a user error (one line on stderr).

    User errors (bad arguments, missing or unreadable files, data or models that cannot work, failed parity)
    print `cnnzoo <command>: error: ...`; `--debug` shows their traceback. Without `--debug`/`--verbose`,
    TensorFlow's C++ log lines are kept off stderr (cnnzoo.cli.quiet).
    """
    parser = build_parser()   # imports no TensorFlow: `--help` answers at once
    args = parser.parse_args(argv)
    loud = args.debug or args.verbose or os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"
    if not loud:
        quiet.quiet_environment()
    if args.verbose:
        logging.basicConfig(format="%(name)s: %(message)s")
        logging.getLogger("cnnzoo").setLevel(logging.INFO)
    with contextlib.nullcontext() if loud else quiet.filtered_stderr():
        try:
            return args.func(args)
        except Exception as error:
            if args.debug or not is_user_error(error):
                raise   # a bug: the traceback is the report
            print(f"cnnzoo {args.command}: error: {one_line(error)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
