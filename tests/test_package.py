"""The package surface: plain `import cnnzoo` is enough to load saved models, and API.md's names exist."""
import subprocess
import sys

import pytest


def test_saved_model_loads_after_plain_import(tmp_path):
    import cnnzoo

    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3), pooling="spp")
    model.save(tmp_path / "m.keras")
    code = ("import cnnzoo, keras, sys; m = keras.saving.load_model(sys.argv[1]); "
            "print(type(m.layers[1]).__name__)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.keras")], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "Preprocessing"


@pytest.mark.parametrize("code", [
    "import keras, cnnzoo, sys; m = keras.saving.load_model(sys.argv[1])",
    "import cnnzoo, sys; from keras.saving import load_model; m = load_model(sys.argv[1])",
    "import cnnzoo, sys, tensorflow as tf; m = tf.keras.models.load_model(sys.argv[1])",
])
def test_layers_register_whatever_the_import_order(tmp_path, code):
    # `import cnnzoo` loads no Keras (the CLI's --help stays fast); its layers register once Keras is imported.
    import cnnzoo

    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3), pooling="mixed")
    model.save(tmp_path / "m.keras")
    out = subprocess.run([sys.executable, "-c", code + "; print(type(m.layers[1]).__name__)", str(tmp_path / "m.keras")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "Preprocessing"


def test_api_names_exist():
    import cnnzoo

    for name in ("create_model", "list_models", "model_info", "profile", "finetune", "Stage", "evaluate",
                 "export", "validate", "train", "tune", "serving", "explain", "layers", "models", "data"):
        assert hasattr(cnnzoo, name), name
    assert callable(cnnzoo.export) and callable(cnnzoo.validate) and callable(cnnzoo.evaluate)
    assert callable(cnnzoo.models.efficientnet)
    assert hasattr(cnnzoo.validate, "reference_stats")
    assert hasattr(cnnzoo.train, "lr_find") and hasattr(cnnzoo.explain, "grad_cam")
    for name in ("fit", "lr_find", "recalibrate_bn"):
        assert callable(getattr(cnnzoo.train, name))
    for name in ("step_decay", "exponential_decay", "cosine", "cosine_restarts", "one_cycle"):
        assert hasattr(cnnzoo.train.schedules, name), name
    assert hasattr(cnnzoo.serving, "Client") and hasattr(cnnzoo.tune, "CnnZooHyperModel")


def test_zoo_builds_and_runs_on_the_jax_backend_without_tensorflow(tmp_path):
    """The zoo uses keras.ops only: with TensorFlow unimportable and Keras on JAX (how the GPU benchmark ran on a
    machine without TensorFlow), `import cnnzoo` and `create_model` work and compute what the TensorFlow build
    computes; the TensorFlow-only parts say what they need."""
    import os

    import numpy as np
    import pytest

    import cnnzoo

    pytest.importorskip("jax")
    code = (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"      # `import tensorflow` fails from here on
        "import keras, numpy as np, cnnzoo\n"
        "assert keras.backend.backend() == 'jax'\n"
        "m = cnnzoo.create_model('mobilenet_v2_035', num_classes=3, input_shape=(32, 32, 3))\n"
        "m.load_weights(sys.argv[1])\n"
        "np.save(sys.argv[2], np.asarray(m(np.load(sys.argv[3]))))\n"
        "try:\n    cnnzoo.data\nexcept ModuleNotFoundError as e:\n    print('needs', e.name)\n")
    model = cnnzoo.create_model("mobilenet_v2_035", num_classes=3, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    weights, out, inputs = (str(tmp_path / n) for n in ("m.weights.h5", "out.npy", "x.npy"))
    model.save_weights(weights)
    np.save(inputs, x)
    result = subprocess.run([sys.executable, "-c", code, weights, out, inputs], capture_output=True, text=True,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs tensorflow" in result.stdout
    np.testing.assert_allclose(np.load(out), model(x).numpy(), atol=1e-5)


# --- the import graph ------------------------------------------------------------------------------------------
# Every `import` of a cnnzoo module by a cnnzoo module is an edge: at module level and deferred (inside functions,
# classes, try/if blocks), `from x import y` counting as x.y when y is a module and as x otherwise, relative
# imports resolved, `importlib.import_module("literal")` included. Not edges: imports under `if TYPE_CHECKING:`
# (never run), the parent packages Python initialises on the way (importing a.b.c runs a/__init__ first, for
# every module alike), and names looked up at run time (cnnzoo/__init__'s lazy attribute table).

import ast  # noqa: E402
import os  # noqa: E402

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cnnzoo")


def _package_modules(package_dir):
    """{module name: file} for every module of the package (a package is named after its __init__.py)."""
    base = os.path.dirname(package_dir)
    found = {}
    for folder, dirs, files in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if os.path.isfile(os.path.join(folder, d, "__init__.py")))
        for file in sorted(files):
            if file.endswith(".py"):
                parts = os.path.relpath(os.path.join(folder, file), base)[:-3].split(os.sep)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = os.path.join(folder, file)
    return found


def _is_type_checking(test):
    return getattr(test, "id", getattr(test, "attr", None)) == "TYPE_CHECKING"


def _import_nodes(tree):
    """Every import of a module at any depth, but not under `if TYPE_CHECKING:`, plus import_module("...")."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) ==
              "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield ast.Import(names=[ast.alias(name=node.args[0].value)], lineno=node.lineno)
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package_dir=PACKAGE_DIR):
    """{module: {imported module: first line importing it}}, both inside the package."""
    modules = _package_modules(package_dir)
    graph = {}
    for name, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), filename=path)
        package = name if os.path.basename(path) == "__init__.py" else name.rpartition(".")[0]
        edges = {}
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = node.module
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1])
                    source = f"{base}.{node.module}" if node.module else base
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            for target in targets:
                if target in modules and target != name:
                    edges[target] = min(edges.get(target, node.lineno), node.lineno)
        graph[name] = edges
    return graph


def find_cycles(graph):
    """(one shortest cycle [a, b, ..., a], all its modules) per strongly connected component of more than one
    module (Tarjan's algorithm)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(graph[root])))]
        while work:  # iterative depth-first search
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while not component or member != node:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                    if len(component) > 1:
                        components.append(component)
    cycles = []
    for component in components:
        start = min(component)
        previous, frontier = {start: None}, [start]
        while not any(start in graph[n] for n in frontier):  # breadth first: the shortest way back to start
            reached = []
            for n in frontier:
                for child in sorted(graph[n]):
                    if child in component and child not in previous:
                        previous[child] = n
                        reached.append(child)
            frontier = reached
        path = [next(n for n in frontier if start in graph[n])]
        while previous[path[-1]] is not None:
            path.append(previous[path[-1]])
        cycles.append((path[::-1] + [start], sorted(component)))
    return cycles


def _describe(cycle, graph, modules):
    return " -> ".join(f"{a} ({os.path.relpath(modules[a], os.path.dirname(PACKAGE_DIR))}:{graph[a][b]})"
                       for a, b in zip(cycle, cycle[1:])) + f" -> {cycle[-1]}"


def test_the_import_graph_sees_every_kind_of_import(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "import importlib\ndef __getattr__(name):\n    return importlib.import_module(name)\n",
        "a.py": "def f():\n    from pkg.sub import b\n",
        "sub/__init__.py": "",
        "sub/b.py": "from .. import c\nfrom . import helper_name\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nelse:\n    import pkg.d\n",
        "d.py": "try:\n    import importlib\n    importlib.import_module('pkg.a')\nexcept ImportError:\n    pass\n",
    }
    for path, text in files.items():
        (pkg / path).write_text(text)
    graph = import_graph(str(pkg))
    assert graph["pkg.a"] == {"pkg.sub.b": 2}          # deferred, `from x import submodule`
    assert graph["pkg.sub.b"] == {"pkg.c": 1, "pkg.sub": 2}  # relative; a plain name counts as its package
    assert graph["pkg.c"] == {"pkg.d": 5}              # TYPE_CHECKING imports never run
    assert graph["pkg.d"] == {"pkg.a": 3}              # import_module("literal")
    assert graph["pkg"] == {}                          # a lazy attribute table is not an import
    assert find_cycles(graph) == [(["pkg.a", "pkg.sub.b", "pkg.c", "pkg.d", "pkg.a"],
                                   ["pkg.a", "pkg.c", "pkg.d", "pkg.sub.b"])]


def test_cnnzoo_has_no_import_cycle():
    graph, modules = import_graph(), _package_modules(PACKAGE_DIR)
    assert "cnnzoo.registry" in graph and "cnnzoo.models.resnet" in graph
    cycles = find_cycles(graph)
    assert not cycles, "import cycles, as module (file:line of the import) -> ...:\n" + "\n".join(
        f"{_describe(cycle, graph, modules)}   [all modules of this cycle: {', '.join(members)}]"
        for cycle, members in cycles)


def test_the_registry_imports_no_family():
    # The registry stores entries and looks them up; the families register themselves (timm's _registry.py).
    graph = import_graph()
    family = [m for m in graph["cnnzoo.registry"] if m == "cnnzoo.models" or m.startswith("cnnzoo.models.")]
    assert not family, f"cnnzoo/registry.py imports {family}"


def test_the_zoo_is_complete_however_it_is_reached():
    """`cnnzoo.registry`, `cnnzoo.list_models` and `cnnzoo.models` see every family in a fresh interpreter; the
    bare registry, imported before the families, says what to import instead of missing every name."""
    import os

    # The registry and the families need neither TensorFlow nor a backend's compute: keep the interpreters light.
    env = dict(os.environ, KERAS_BACKEND="numpy")
    prelude = "import sys\nsys.modules['tensorflow'] = None\n"
    fresh = prelude + "import cnnzoo\nprint(cnnzoo.registry.get_entry('resnet18').name)\n"
    bare = prelude + ("import cnnzoo.registry as r\n"
                      "try:\n    r.list_models()\nexcept RuntimeError as e:\n    print(e)\n"
                      "import cnnzoo\nprint(cnnzoo.list_models('vgg11'), r.list_models('vgg11'), "
                      "cnnzoo.models.get_entry('vgg11').name)\n")
    outputs = []
    for code in (fresh, bare):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        outputs.append(out.stdout)
    assert outputs[0].strip() == "resnet18"
    assert "import cnnzoo.models" in outputs[1] and "['vgg11'] ['vgg11'] vgg11" in outputs[1]


def test_each_list_of_names_is_defined_once():
    """Optimizer names, augmentation policies, schedules, export formats, fits, tuners and validation sections live
    in cnnzoo.options; the library and the CLI's `choices=` use those very tuples, and no module keeps a copy."""
    import argparse
    import ast
    import importlib
    from pathlib import Path

    import cnnzoo
    from cnnzoo import options
    from cnnzoo.cli.main import build_parser

    def owner(module, name):
        return getattr(importlib.import_module(module), name)

    assert owner("cnnzoo.train.optimizers", "OPTIMIZER_NAMES") is options.OPTIMIZER_NAMES
    assert owner("cnnzoo.train.fit", "OPTIMIZER_NAMES") is options.OPTIMIZER_NAMES
    assert owner("cnnzoo.train.schedules", "SCHEDULE_NAMES") is options.SCHEDULE_NAMES
    assert owner("cnnzoo.data.augment", "POLICIES") is options.AUGMENT_POLICIES
    assert owner("cnnzoo.tune.space", "AUGMENT_POLICIES") is options.AUGMENT_POLICIES
    assert owner("cnnzoo.export", "FORMATS") is options.EXPORT_FORMATS
    assert owner("cnnzoo.export", "DEFAULT_FORMATS") is options.DEFAULT_EXPORT_FORMATS
    assert owner("cnnzoo.export.tflite", "VARIANTS") is options.TFLITE_FORMATS
    assert owner("cnnzoo.data.images", "FITS") is owner("cnnzoo.export.serving", "FITS") is options.FITS
    assert owner("cnnzoo.tune.search", "TUNERS") is options.TUNERS
    assert owner("cnnzoo.validate.report", "SECTIONS") is options.VALIDATION_SECTIONS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))

    def argument(command, dest):
        return next(a for a in sub.choices[command]._actions if a.dest == dest)

    for command in ("train", "finetune"):
        assert argument(command, "augment").choices is options.AUGMENT_POLICIES
    assert argument("train", "optimizer").choices is options.OPTIMIZER_NAMES
    assert argument("train", "schedule").choices is options.SCHEDULE_NAMES
    assert argument("export", "formats").choices is options.EXPORT_FORMATS
    assert argument("export", "formats").default == list(options.DEFAULT_EXPORT_FORMATS)
    assert argument("tune", "tuner").choices is options.TUNERS
    assert argument("validate", "checks").default == ",".join(options.VALIDATION_SECTIONS)

    lists = {name: set(value) for name, value in vars(options).items()
             if name.isupper() and isinstance(value, tuple) and len(value) >= 3}
    copies = []
    for path in sorted(Path(cnnzoo.__file__).parent.rglob("*.py")):
        if path.name == "options.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and all(
                    isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                values = {e.value for e in node.elts}
                copies += [f"{path.name}:{node.lineno} copies {name}" for name, ref in lists.items() if values == ref]
    assert not copies, copies
