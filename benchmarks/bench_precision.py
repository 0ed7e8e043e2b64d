"""Training-step images/s by precision: fp32 vs mixed_bfloat16 on CPU; fp32 vs mixed_float16, XLA off/on, on GPU.

Each variant is the same cnnzoo model (preprocessing included, as trained) put under the policy the way
`cnnzoo.train.fit(..., mixed_precision=...)` does it (`cnnzoo.train.precision.mixed_model`: every layer under
the policy, the classifier float32), compiled with SGD and sparse categorical cross-entropy (float16 adds a
LossScaleOptimizer, as fit does), and timed with `train_on_batch` on one fixed batch. Variants run
interleaved (rotating order each round); the ratio is the median of per-round ratios against fp32 without XLA.

Without a GPU the float16 rows are not run (float16 matmuls have no fast CPU kernels); bfloat16 needs
AVX512_BF16 or AMX (recorded in the machine facts). With a GPU the file records its name.

Under `KERAS_BACKEND=jax` (a GPU machine without TensorFlow: the zoo uses keras.ops only) the same variants run
on Keras' JAX trainer: "+xla" is `jit_compile=True` (the whole train step one XLA program, JAX's default) and
the rows without it run op by op (`jit_compile=False`).

Usage:
    python benchmarks/bench_precision.py --quick      # mobilenet_v2 at 64 px, batch 8
    python benchmarks/bench_precision.py              # mobilenet_v2 and resnet50 at 224 px, batch 32
    KERAS_BACKEND=jax python benchmarks/bench_precision.py --out gpu.json   # on a GPU with JAX, no TensorFlow
"""
from __future__ import annotations

import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

MODELS = ("mobilenet_v2", "resnet50")


def settings(quick: bool, rounds: int | None) -> dict:
    if quick:
        return dict(size=64, batch=8, rounds=rounds or 3, models=("mobilenet_v2",))
    return dict(size=224, batch=32, rounds=rounds or 5, models=MODELS)


def variants(gpu: bool, cpu_bf16: bool, backend: str = "tensorflow") -> tuple[dict, dict]:
    """(label -> (policy, jit_compile)) to run, and label -> reason for the rows left out."""
    if gpu:
        run = {"fp32": ("float32", False), "fp32+xla": ("float32", True),
               "mixed_float16": ("mixed_float16", False), "mixed_float16+xla": ("mixed_float16", True),
               "mixed_bfloat16": ("mixed_bfloat16", False)}
        if backend == "jax":   # JAX's own default is jit: its bfloat16 row is the compiled one
            run["mixed_bfloat16+xla"] = run.pop("mixed_bfloat16")[:1] + (True,)
        return run, {}
    run, skipped = {"fp32": ("float32", False)}, {"mixed_float16": "no GPU (float16 has no fast CPU kernels)"}
    if cpu_bf16:
        run["mixed_bfloat16"] = ("mixed_bfloat16", False)
    else:
        skipped["mixed_bfloat16"] = "CPU without AVX512_BF16 / AMX-BF16"
    return run, skipped


def compare(name: str, runs: dict, *, size: int, batch: int, rounds: int, calls: int = 1, log=print) -> dict:
    import keras
    import numpy as np

    import cnnzoo

    mixed_model = _mixed_model()
    base = cnnzoo.create_model(name, num_classes=1000, input_shape=(size, size, 3))
    x = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = np.arange(batch) % 1000
    models, base_used = {}, False
    for label, (policy, jit) in runs.items():
        if policy != "float32":
            model = mixed_model(base, policy)
        elif not base_used:
            model, base_used = base, True
        else:  # each variant compiles its own model
            model = keras.models.clone_model(base)
        optimizer = keras.optimizers.SGD(learning_rate=1e-4)
        if policy == "mixed_float16":
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", jit_compile=jit)
        models[label] = model
    seconds = _common.interleaved({k: (lambda m=m: m.train_on_batch(x, y)) for k, m in models.items()},
                                  rounds=rounds, warmup=2, calls=calls)
    out = {}
    baseline = next(iter(runs))   # fp32 (XLA off) unless --variants left it out
    for label in runs:
        out[label] = {"train": _common.rate_summary(seconds[label], batch),
                      "speedup_vs_fp32": _common.paired_ratio(seconds[baseline], seconds[label]),
                      "policy": runs[label][0], "jit_compile": runs[label][1]}
        log(f"{name:14s} {label:18s} {out[label]['train']['img_s']:8.2f} img/s   "
            f"x{out[label]['speedup_vs_fp32']['ratio']:.2f} vs fp32")
    return out


def _mixed_model():
    """cnnzoo.train's way of putting a model under a policy (classifier float32). Under JAX, without TensorFlow,
    its keras-only module is loaded from its file: importing the package would import TensorFlow."""
    try:
        from cnnzoo.train.precision import mixed_model
        return mixed_model
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
    import importlib.util

    import cnnzoo

    path = os.path.join(os.path.dirname(cnnzoo.__file__), "train", "_model.py")
    spec = importlib.util.spec_from_file_location("cnnzoo_train_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda model, policy: module.rebuild(model, policy=policy) if policy != "float32" else model


def _devices() -> tuple[bool, bool, str]:
    """(GPU visible, CPU has bfloat16 kernels, Keras backend)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices()), False, backend
    from cnnzoo.train.precision import cpu_supports_bf16, gpu_visible

    return gpu_visible(), cpu_supports_bf16(), backend


def main(argv=None, log=print) -> dict:
    p = _common.parser(__doc__.splitlines()[0], "bench_precision.json")
    p.add_argument("--models", default=None, help=f"comma-separated subset of {','.join(MODELS)}")
    p.add_argument("--variants", default=None, help="comma-separated subset of the variants, e.g. fp32,fp32+xla")
    args = p.parse_args(argv)
    config = settings(args.quick, args.rounds)
    if args.models:
        config["models"] = tuple(args.models.split(","))
    started = time.perf_counter()
    import keras

    info = _common.machine_info()
    gpu, cpu_bf16, backend = _devices()
    runs, skipped = variants(gpu, cpu_bf16, backend)
    if args.variants:
        wanted = args.variants.split(",")
        unknown = [v for v in wanted if v not in runs]
        if unknown:
            p.error(f"--variants: {unknown} not available here; choose from {', '.join(runs)}. "
                    f"Received: --variants={args.variants!r}")
        skipped.update({k: "not asked for (--variants)" for k in runs if k not in wanted})
        runs = {k: v for k, v in runs.items() if k in wanted}
    rows = {}
    for name in config["models"]:
        # A GPU step takes milliseconds: time several per round.
        rows[name] = compare(name, runs, size=config["size"], batch=config["batch"], rounds=config["rounds"],
                             calls=10 if gpu else 1, log=log)
        keras.backend.clear_session()
        gc.collect()
        # Written after every model, so a run cut short (a lent GPU's time limit) keeps what it measured.
        report = {"benchmark": "precision", "quick": args.quick, "image_size": config["size"],
                  "batch": config["batch"], "rounds": config["rounds"],
                  "device": info["gpus"][0] if gpu else f"CPU: {info['cpu']['model']}", "backend": backend,
                  "variants": {k: {"policy": p, "jit_compile": j} for k, (p, j) in runs.items()},
                  "skipped": skipped, "rows": rows, "machine": info, "load_average_end": _common.load_average(),
                  "seconds": round(time.perf_counter() - started, 1)}
        _common.write_json(args.out, report)
    log(f"wrote {args.out}")
    return report


def markdown(report: dict) -> str:
    baselines = report.get("baselines", {})   # a model whose fp32 (XLA off) row was not run
    rows = [[name, label, v["train"]["img_s"], f"x{v['speedup_vs_fp32']['ratio']:.2f}",
             f"{v['speedup_vs_fp32']['min']:.2f}..{v['speedup_vs_fp32']['max']:.2f}", baselines.get(name, "fp32")]
            for name, variants_ in report["rows"].items() for label, v in variants_.items()]
    skipped = "; ".join(f"{k}: {v}" for k, v in report["skipped"].items())
    backend = report.get("backend", "tensorflow")
    how = ("" if backend == "tensorflow" else f", Keras {report['machine']['versions'].get('keras', '')} on "
           f"{backend} {report['machine']['versions'].get(backend, '')} ('+xla': jit_compile=True; without: op by op)")
    return (f"Training step (train_on_batch), batch {report['batch']}, {report['image_size']} px, on "
            f"{report['device']}{how}; median of {report['rounds']} interleaved rounds."
            + (f" Not run: {skipped}." if skipped else "") + (f" {report['note']}" if report.get("note") else "")
            + "\n\n" + _common.table(rows, ["model", "precision", "train img/s", "speedup", "round ratios",
                                             "speedup against"]))


def chart(report: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    models = list(report["rows"])
    labels = list(report["variants"])
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        values = [report["rows"][m][label]["train"]["img_s"] if label in report["rows"][m] else 0 for m in models]
        ax.bar([j + i * width for j in range(len(models))], values, width, label=label)
    ax.set_xticks([j + width * (len(labels) - 1) / 2 for j in range(len(models))], models)
    ax.set_ylabel("training img/s")
    rates = [v["train"]["img_s"] for r in report["rows"].values() for v in r.values() if v["train"]["img_s"] > 0]
    if rates and max(rates) > 10 * min(rates):
        ax.set_yscale("log")   # op-by-op and compiled steps differ by ~50x on a GPU
    ax.set_title(f"Training precision on {report['device']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
