"""cnnzoo models against keras.applications: inference (batch 1 and 32) and training-step images/s, same graph.

Fairness: cnnzoo models are built with `preprocessing=None` and keras.applications models with `weights=None`,
both 1000 classes, same input size, same batch and same random input; keras' random weights are copied into the
cnnzoo model layer by layer (same names), so both compute the same numbers. Inference calls both as
`model(x, training=False)` inside their own `tf.function` (graph mode, no XLA); training runs
`model.train_on_batch` after `compile(optimizer=SGD, loss="sparse_categorical_crossentropy")` (SGD without
momentum has no slot variables, so it adds little on top of the forward and backward passes being compared).
Rounds interleave the two models (A B, B A, ...); the ratio is the median of per-round ratios
cnnzoo img/s / keras img/s (a batch-1 round keeps the fastest of its calls). Goal (issue #9): >= 1.00 on every
row; a row below it is tested (sign test over the rounds) and the two traced graphs are compared op by op, so
the report says whether cnnzoo is slower or the machine was noisy.

keras.applications EfficientNetB0 has Rescaling + Normalization layers inside even with `weights=None`; the
`efficientnet_b0+norm` row (full mode) compares it with cnnzoo's `preprocessing="default"` so both normalize.

Usage:
    python benchmarks/bench_zoo.py --quick            # mobilenet_v2 at 64 px, a minute or two
    python benchmarks/bench_zoo.py                    # the four models at 224 px, 7 rounds
    python benchmarks/bench_zoo.py --families         # one member of each newer family at 160 px, 7 rounds
    python benchmarks/bench_zoo.py --families --members mobilenet_v3_small   # re-measure one row
    python benchmarks/bench_zoo.py --families --members mobilenet_v3_small --instances 4   # builds as units
"""
from __future__ import annotations

import gc
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402

#: (cnnzoo name, keras.applications class, cnnzoo preprocessing, label)
PAIRS = [("resnet50", "ResNet50", None, "resnet50"),
         ("mobilenet_v2", "MobileNetV2", None, "mobilenet_v2"),
         ("efficientnet_b0", "EfficientNetB0", None, "efficientnet_b0"),
         ("vgg16", "VGG16", None, "vgg16")]
EXTRA = [("efficientnet_b0", "EfficientNetB0", "default", "efficientnet_b0+norm")]
QUICK_PAIRS = [("mobilenet_v2", "MobileNetV2", None, "mobilenet_v2")]
#: One member of every family that issue #15 added and keras.applications also has (ResNeXt has no keras twin),
#: with the keras arguments that leave its in-model preprocessing out (cnnzoo side: preprocessing=None).
#: (cnnzoo name, keras.applications class, label, keras kwargs)
FAMILY_PAIRS = [("densenet121", "DenseNet121", "densenet121", {}),
                ("inception_v3", "InceptionV3", "inception_v3", {}),
                ("inception_resnet_v2", "InceptionResNetV2", "inception_resnet_v2", {}),
                ("xception", "Xception", "xception", {}),
                ("mobilenet_v1_100", "MobileNet", "mobilenet_v1_100", {}),
                ("mobilenet_v3_small", "MobileNetV3Small", "mobilenet_v3_small", {"include_preprocessing": False}),
                ("efficientnet_v2_b0", "EfficientNetV2B0", "efficientnet_v2_b0", {"include_preprocessing": False}),
                ("convnext_tiny", "ConvNeXtTiny", "convnext_tiny", {"include_preprocessing": False}),
                ("resnet50_v2", "ResNet50V2", "resnet50_v2", {}),
                ("nasnet_mobile", "NASNetMobile", "nasnet_mobile", {})]
QUICK_FAMILIES = ("mobilenet_v3_small", "convnext_tiny")


def measures(batch: int) -> tuple[str, str, str]:
    return ("inference_b1", f"inference_b{batch}", f"train_b{batch}")


def settings(quick: bool, rounds: int | None, families: bool = False) -> dict:
    """Sizes and rows. `families`: the family rows only, at 160 px and batch 16 (10 models; 224 px would take
    most of an hour on 2 cores), Inception-sized inputs included (its stem needs >= 75 px)."""
    if families:
        pairs = [p for p in FAMILY_PAIRS if not quick or p[0] in QUICK_FAMILIES]
        if quick:
            return dict(size=96, batch=4, rounds=rounds or 3, b1_calls=5, pairs=[], families=pairs, extra=[])
        return dict(size=160, batch=16, rounds=rounds or 7, b1_calls=20, pairs=[], families=pairs, extra=[])
    if quick:
        return dict(size=64, batch=8, rounds=rounds or 3, b1_calls=5, pairs=QUICK_PAIRS, families=[], extra=[])
    return dict(size=224, batch=32, rounds=rounds or 7, b1_calls=20, pairs=PAIRS, families=[], extra=EXTRA)


def compare(name: str, keras_class: str, preprocessing, *, size: int, batch: int, rounds: int, b1_calls: int,
            wanted=None, keras_kwargs=None, instances: int = 1, log=print) -> dict:
    """Build both models, time them interleaved, return figures per measure.

    With `keras_kwargs` (the family rows) keras' weights go over through a saved `.weights.h5` file, which
    `cnnzoo.create_model(weights=)` loads whatever keras named its layers; else layer by layer by name.
    `instances` > 1 builds that many fresh models of each side (built keras, cnnzoo, keras, ...; all with the
    same weights) and times them all interleaved: two builds of one model can differ by ~10 % on this machine
    (where their buffers land), which per-round tests cannot see; see `_instance_figures`.
    """
    import tempfile

    import keras
    import numpy as np
    import tensorflow as tf

    import cnnzoo

    def build_keras():
        return getattr(keras.applications, keras_class)(weights=None, input_shape=(size, size, 3), classes=1000,
                                                        **(keras_kwargs or {}))

    first = build_keras()
    rng = np.random.default_rng(0)
    models = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"{name}.weights.h5")
        first.save_weights(path)
        for i in range(instances):
            theirs = first if i == 0 else build_keras()
            if i:
                theirs.load_weights(path)
            if keras_kwargs is None:
                ours = cnnzoo.create_model(name, num_classes=1000, input_shape=(size, size, 3),
                                           preprocessing=preprocessing)
                # Same numbers too, not only the same graph: the initializers differ (cnnzoo: He fan-out, like
                # timm), and values can change a kernel's speed (denormals), so keras' weights are copied by name.
                copied = copy_weights(theirs, ours)
            else:
                ours = cnnzoo.create_model(name, num_classes=1000, input_shape=(size, size, 3),
                                           preprocessing=preprocessing, weights=path)
                copied = "all (keras weights file)"
            suffix = f"#{i}" if i else ""
            models[f"cnnzoo{suffix}"], models[f"keras{suffix}"] = ours, theirs
    ours, theirs = models["cnnzoo"], models["keras"]
    probe = rng.uniform(0, 255, (1, size, size, 3)).astype("float32") / 127.5 - 1.0
    a, b = np.asarray(ours(probe, training=False)), np.asarray(theirs(probe, training=False))
    facts = {"cnnzoo_params": ours.count_params(), "keras_params": theirs.count_params(),
             "cnnzoo_layers": len(ours.layers), "keras_layers": len(theirs.layers), "weights_copied": copied,
             # the two models compute the same function (softmax outputs on one random image)
             "max_abs_output_diff": float(np.max(np.abs(a - b))), "instances_per_side": instances}
    x_big = tf.constant(rng.uniform(0, 255, (batch, size, size, 3)).astype("float32"))
    x_one = x_big[:1]
    labels = np.arange(batch) % 1000
    result = {"facts": facts}

    infer_one, infer_big, train_big = measures(batch)
    wanted = wanted or (infer_one, infer_big, train_big)
    if infer_one in wanted or infer_big in wanted:
        # One tf.function per model; the same call for both.
        fns = {k: tf.function(lambda x, m=m: m(x, training=False)) for k, m in models.items()}
        result["graph"] = compare_graphs({k: fns[k].get_concrete_function(x_one) for k in ("cnnzoo", "keras")})
        for measure, x, calls in ((infer_one, x_one, b1_calls), (infer_big, x_big, 1)):
            if measure not in wanted:
                continue
            # Batch 1 calls last milliseconds: each round keeps its fastest call (see _common.interleaved).
            seconds = _common.interleaved({k: (lambda f=f, x=x: f(x).numpy()) for k, f in fns.items()},
                                          rounds=rounds, warmup=2, calls=calls, best_of=calls > 1)
            result[measure] = _figures(seconds, int(x.shape[0]))
            log(_line(name, measure, result[measure]))
    if train_big in wanted:
        for m in models.values():
            m.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-4), loss="sparse_categorical_crossentropy")
        seconds = _common.interleaved({k: (lambda m=m: m.train_on_batch(x_big, labels)) for k, m in models.items()},
                                      rounds=rounds, warmup=2, calls=1)
        result[train_big] = _figures(seconds, batch)
        log(_line(name, train_big, result[train_big]))
    return result


def copy_weights(source, target) -> int:
    """Copy the weights of every layer of `source` into the layer of `target` with its name and shapes."""
    by_name = {layer.name: layer for layer in source.layers if layer.weights}
    copied = 0
    for layer in target.layers:
        other = by_name.get(layer.name)
        if other is None or [w.shape for w in other.weights] != [w.shape for w in layer.weights]:
            continue
        layer.set_weights(other.get_weights())
        copied += 1
    return copied


#: Bookkeeping ops that cost nothing at run time (variable reads, identities, constants, control edges).
FREE_OPS = {"Identity", "NoOp", "Const", "ReadVariableOp", "Placeholder", "_Arg", "_Retval"}


def compare_graphs(functions: dict) -> dict:
    """The compute ops of each traced inference graph, counted by type, and where the two differ.

    Equal counts mean both sides run the same kernels on the same shapes (checked below), so a median ratio
    below 1.00 is the machine's noise, not the model.
    """
    counts, shapes = {}, {}
    for name, concrete in functions.items():
        ops = [op for op in concrete.graph.get_operations() if op.type not in FREE_OPS]
        counts[name] = dict(sorted(_count(op.type for op in ops).items()))
        # Output shapes of the heavy kernels, in graph order: same counts with other shapes would be another graph.
        shapes[name] = [str(op.outputs[0].shape) for op in ops
                        if op.type in ("Conv2D", "DepthwiseConv2dNative", "MatMul") and op.outputs]
    a, b = counts["cnnzoo"], counts["keras"]
    differ = {op: [a.get(op, 0), b.get(op, 0)] for op in sorted(set(a) | set(b)) if a.get(op, 0) != b.get(op, 0)}
    return {"compute_ops": {k: sum(v.values()) for k, v in counts.items()}, "ops_differing": differ,
            "same_heavy_kernels": sorted(shapes["cnnzoo"]) == sorted(shapes["keras"]),
            "heavy_kernels": len(shapes["cnnzoo"])}


def _count(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def sign_test_p(ratios_below: int, rounds: int) -> float:
    """One-sided sign test: the chance of `ratios_below` or more rounds below 1.00 if both were equally fast."""
    from math import comb

    return sum(comb(rounds, k) for k in range(ratios_below, rounds + 1)) / 2 ** rounds


def _side(seconds: dict, side: str) -> list[str]:
    """The task names of one side: "cnnzoo", "cnnzoo#1", ... (instance 0 has no suffix)."""
    return [k for k in seconds if k.split("#")[0] == side]


def _figures(seconds: dict, items: int) -> dict:
    """Per-round figures, pairing cnnzoo instance i with keras instance i in every round (pooled over pairs)."""
    ours, theirs = _side(seconds, "cnnzoo"), _side(seconds, "keras")
    mine = [s for k in ours for s in seconds[k]]
    other = [s for k in theirs for s in seconds[k]]
    below = sum(k < c for k, c in zip(other, mine))
    figures = {"cnnzoo": _common.rate_summary(mine, items), "keras": _common.rate_summary(other, items),
               # cnnzoo img/s over keras img/s = keras seconds over cnnzoo seconds, per round.
               "ratio": _common.paired_ratio(other, mine),
               "rounds_below_1": below, "slower_p": round(sign_test_p(below, len(mine)), 4)}
    if len(ours) > 1:
        figures["instances"] = _instance_figures(seconds, items, ours, theirs)
    return figures


def _instance_figures(seconds: dict, items: int, ours: list[str], theirs: list[str]) -> dict:
    """With several builds per side, the build is the unit: one median img/s per instance, compared across sides.

    Rounds of one build are not independent draws (a build whose buffers landed badly is slow in every round),
    so here the test is one-sided Mann-Whitney over instance medians (scipy, exact): p that cnnzoo's builds are
    slower than keras'. `keras_a_a_ratio` is the same ratio between keras' own builds (#1 over #0): the spread
    two builds of one model show here.
    """
    import statistics

    from scipy.stats import mannwhitneyu

    rate = {k: items / statistics.median(seconds[k]) for k in ours + theirs}
    mine, other = [rate[k] for k in ours], [rate[k] for k in theirs]
    return {"cnnzoo_img_s": [round(r, 2) for r in mine], "keras_img_s": [round(r, 2) for r in other],
            "ratio": round(statistics.median(mine) / statistics.median(other), 3),
            "keras_a_a_ratio": round(rate[theirs[1]] / rate[theirs[0]], 3),
            "keras_spread": round(max(other) / min(other), 3), "cnnzoo_spread": round(max(mine) / min(mine), 3),
            "slower_p": round(float(mannwhitneyu(mine, other, alternative="less", method="exact").pvalue), 4)}


def _line(name: str, measure: str, figures: dict) -> str:
    r = figures["ratio"]
    return (f"{name:22s} {measure:14s} cnnzoo {figures['cnnzoo']['img_s']:8.2f} img/s  "
            f"keras {figures['keras']['img_s']:8.2f} img/s  ratio {r['ratio']:.3f} ({r['min']:.3f}..{r['max']:.3f})"
            + (f"  builds: ratio {figures['instances']['ratio']:.3f}, keras A/A {figures['instances']['keras_a_a_ratio']:.3f}"
               f", p {figures['instances']['slower_p']:.3f}" if "instances" in figures else ""))


def main(argv=None, log=print) -> dict:
    p = _common.parser(__doc__.splitlines()[0], "bench_zoo.json")
    p.add_argument("--families", action="store_true",
                   help="one member of each family added in issue #15 instead (160 px, batch 16)")
    p.add_argument("--members", default=None,
                   help="with --families: comma-separated cnnzoo names, to re-measure only those rows")
    p.add_argument("--instances", type=int, default=1,
                   help="fresh builds of each model per side (>= 2: builds compared as units, see _instance_figures)")
    args = p.parse_args(argv)
    config = settings(args.quick, args.rounds, args.families)
    if args.members:
        known = [pair[0] for pair in FAMILY_PAIRS]
        wanted = args.members.split(",")
        if not args.families or any(m not in known for m in wanted):
            p.error(f"--members takes --families and names among {', '.join(known)}. "
                    f"Received: --members={args.members!r}")
        config["families"] = [pair for pair in FAMILY_PAIRS if pair[0] in wanted]
    if args.instances < 1:
        p.error(f"--instances takes a whole number >= 1. Received: --instances={args.instances}")
    started = time.perf_counter()
    import keras

    info = _common.machine_info()
    rows = {}
    names = measures(config["batch"])
    jobs = [(p + (None,), names) for p in config["pairs"]] + [(p + (None,), names[:2]) for p in config["extra"]]
    jobs += [((name, keras_class, None, label, kwargs), names) for name, keras_class, label, kwargs in
             config["families"]]
    for (name, keras_class, preprocessing, label, keras_kwargs), wanted in jobs:
        rows[label] = compare(name, keras_class, preprocessing, size=config["size"], batch=config["batch"],
                              rounds=config["rounds"], b1_calls=config["b1_calls"], wanted=wanted,
                              keras_kwargs=keras_kwargs, instances=args.instances, log=log)
        rows[label]["cnnzoo_preprocessing"] = preprocessing
        keras.backend.clear_session()
        gc.collect()
    report = {
        "benchmark": "zoo", "quick": args.quick, "families": args.families,
        "image_size": config["size"], "batch": config["batch"],
        "rounds": config["rounds"], "batch1_calls_per_round": config["b1_calls"], "instances": args.instances,
        "style": "both models called as model(x, training=False) inside their own tf.function (no XLA), batch 1 "
                 f"as the fastest of {config['b1_calls']} calls per round; training: train_on_batch with SGD, "
                 "sparse categorical cross-entropy",
        "rows": rows, "goal": goal(rows, config["batch"]),
        "machine": info, "load_average_end": _common.load_average(),
        "seconds": round(time.perf_counter() - started, 1)}
    _common.write_json(args.out, report)
    log(f"wrote {args.out}")
    return report


def _slower_p(cell: dict) -> float:
    """The cell's p that cnnzoo is slower: across builds when it has several (`--instances`), else over rounds."""
    if "instances" in cell:
        return cell["instances"]["slower_p"]
    return cell.get("slower_p", 1.0 if cell["ratio"]["max"] >= 1.0 else 0.0)


def goal(rows: dict, batch: int) -> dict:
    """The issue's goal (every median ratio >= 1.00) and, for rows that miss it, whether that is a finding.

    A row is significantly slower when the one-sided sign test over its rounds gives p < 0.05 (with 7 rounds:
    cnnzoo behind in all 7), or, measured with `--instances` N, when Mann-Whitney over the builds does (N = 4:
    every cnnzoo build slower than every keras build, p = 1/70); `extra_ops` lists models whose cnnzoo graph runs a compute op keras' does not.
    """
    cells = [(f"{label}/{m}", row[m]) for label, row in rows.items() for m in measures(batch) if m in row]
    below = [name for name, f in cells if f["ratio"]["ratio"] < 1.0]
    every_round = [name for name, f in cells if f["ratio"]["max"] < 1.0]
    significant = [name for name, f in cells if _slower_p(f) < 0.05]
    extra_ops = [label for label, row in rows.items() if "graph" in row and (
        any(ours > theirs for ours, theirs in row["graph"]["ops_differing"].values())
        or not row["graph"]["same_heavy_kernels"])]
    # All rounds of all rows together: if cnnzoo were slower anywhere, it would be behind in most round pairs.
    behind = sum(f["rounds_below_1"] for _, f in cells if "rounds_below_1" in f)
    rounds = sum(f["cnnzoo"]["rounds"] for _, f in cells if "rounds_below_1" in f)
    return {"all_ratios_ge_1": not below, "below_1": below, "below_1_in_every_round": every_round,
            "pooled_rounds_behind": [behind, rounds],
            "pooled_slower_p": round(sign_test_p(behind, rounds), 4) if rounds else None,
            "no_row_below_1_in_every_round": not every_round, "significantly_slower": significant,
            "none_significantly_slower": not significant, "extra_ops": extra_ops,
            "graphs_checked": all("graph" in row for row in rows.values())}


def markdown(report: dict) -> str:
    rows = []
    for label, row in report["rows"].items():
        for measure in measures(report["batch"]):
            if measure not in row:
                continue
            f = row[measure]
            rows.append([label, measure, f["cnnzoo"]["img_s"], f["keras"]["img_s"], f"{f['ratio']['ratio']:.3f}",
                         f"{f['ratio']['min']:.2f}..{f['ratio']['max']:.2f}",
                         f"{f['rounds_below_1']}/{f['cnnzoo']['rounds']}" if "rounds_below_1" in f else None,
                         f.get("slower_p")])
    verdict = goal(report["rows"], report["batch"])
    text = (f"Images/s at {report['image_size']} px (batch 1, batch {report['batch']}); "
            f"median of {report['rounds']} interleaved rounds; {report['style']}. Ratio = median of per-round "
            f"cnnzoo/keras ratios; p = one-sided sign test that cnnzoo is slower. Median ratio < 1.00: "
            f"{', '.join(verdict['below_1']) or 'none'}; significantly slower (p < 0.05): "
            f"{', '.join(verdict['significantly_slower']) or 'none'}."
            + (f" Over every row, cnnzoo was behind in {verdict['pooled_rounds_behind'][0]} of "
               f"{verdict['pooled_rounds_behind'][1]} rounds (sign test p = {verdict['pooled_slower_p']:.2f})."
               if verdict["pooled_slower_p"] is not None else "") + "\n\n")
    graphs = []
    for label, row in report["rows"].items():
        g = row.get("graph")
        if g:
            differ = "; ".join(f"{op} {a} vs {b}" for op, (a, b) in g["ops_differing"].items()) or "none"
            graphs.append([label, g["compute_ops"]["cnnzoo"], g["compute_ops"]["keras"], g["heavy_kernels"],
                           "yes" if g["same_heavy_kernels"] else "NO", differ])
    table = _common.table(rows, ["model", "measure", "cnnzoo img/s", "keras.applications img/s", "ratio",
                                 "round ratios", "rounds cnnzoo behind", "p (slower)"])
    builds = [[label, measure, ", ".join(map(str, f["cnnzoo_img_s"])), ", ".join(map(str, f["keras_img_s"])),
               f"{f['ratio']:.3f}", f"{f['keras_a_a_ratio']:.3f}", f"{f['keras_spread']:.3f}", f["slower_p"]]
              for label, row in report["rows"].items() for measure in measures(report["batch"])
              if measure in row and (f := row[measure].get("instances"))]
    if builds:
        table += ("\n\nBuilds as units (`--instances`): each build's median img/s; ratio = median cnnzoo build over "
                  "median keras build; keras A/A = keras' second build over its first; spread = fastest over slowest "
                  "keras build; p = one-sided Mann-Whitney that cnnzoo's builds are slower (this p decides "
                  "'significantly slower' for these rows).\n\n"
                  + _common.table(builds, ["model", "measure", "cnnzoo builds img/s", "keras builds img/s",
                                           "ratio", "keras A/A", "keras spread", "p (slower)"]))
    if graphs:
        table += ("\n\nWhy the ratios sit at 1.00: the traced inference graphs, compute ops counted by type "
                  "(bookkeeping ops such as variable reads left out); conv/matmul kernels compared by output shape."
                  "\n\n" + _common.table(graphs, ["model", "cnnzoo ops", "keras ops", "conv/matmul kernels",
                                                     "same kernels", "op counts that differ (cnnzoo vs keras)"]))
    return text + table


def chart(report: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values, lows, highs, colors = [], [], [], [], []
    for label, row in report["rows"].items():
        for measure in measures(report["batch"]):
            if measure in row:
                r = row[measure]["ratio"]
                labels.append(f"{label}\n{measure}")
                values.append(r["ratio"])
                lows.append(r["ratio"] - r["min"])
                highs.append(r["max"] - r["ratio"])
                # green: goal met; orange: median below 1 but some round above (noise); red: every round below
                colors.append("tab:green" if r["ratio"] >= 1.0 else "tab:orange" if r["max"] >= 1.0 else "tab:red")
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(labels) + 2), 4))
    ax.bar(range(len(values)), values, yerr=[lows, highs], color=colors, capsize=3)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--")
    ax.set_xticks(range(len(values)), labels, rotation=90, fontsize=7)
    ax.set_ylabel("cnnzoo / keras.applications (img/s)")
    ax.set_title(f"Zoo vs keras.applications, {report['image_size']} px (whiskers: round min..max; orange: "
                 f"median < 1 within the rounds' spread)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
