"""`cnnzoo list` / `cnnzoo info` driven as a user would, in a subprocess."""
import json
import subprocess
import sys


def _run(*args):
    return subprocess.run([sys.executable, "-m", "cnnzoo.cli.main", *args], capture_output=True, text=True,
                          timeout=300)


def test_list_and_info():
    out = _run("list", "resnet1*", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["resnet18", "resnet101", "resnet101_v1_5", "resnet101_v2", "resnet152",
                                      "resnet152_v1_5", "resnet152_v2"]
    out = _run("info", "resnet18", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["params"] == 11_699_112 and info["default_input_size"] == 224
    table = _run("info", "resnet18")
    assert "11,699,112" in table.stdout and "1.814 G" in table.stdout


def test_list_long_and_families_show_params_macs_size_and_paper():
    out = _run("list", "densenet*", "--long")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["name", "family", "params", "MACs", "(G)", "size", "paper"]
    assert lines[1].split()[:5] == ["densenet121", "densenet", "8,062,504", "2.834", "224"]
    assert "arxiv.org/abs/1608.06993" in lines[1]
    out = _run("list", "--families", "--json")
    rows = {r["family"]: r for r in json.loads(out.stdout)}
    for family in ("densenet", "inception_v3", "xception", "mobilenet_v3", "efficientnet_v2", "convnext",
                   "resnet_v2", "resnext", "nasnet", "mobilenet_v1"):
        assert rows[family]["params"][0] > 0 and rows[family]["paper"].startswith("https://"), family


def test_bad_name_exits_2_with_one_line():
    out = _run("info", "resnet05")
    assert out.returncode == 2
    assert "resnet50" in out.stderr and "Traceback" not in out.stderr
    out = _run("frobnicate")
    assert out.returncode == 2
