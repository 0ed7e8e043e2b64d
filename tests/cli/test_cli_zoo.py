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
    assert json.loads(out.stdout) == ["resnet18", "resnet101", "resnet101_v1_5", "resnet152", "resnet152_v1_5"]
    out = _run("info", "resnet18", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["params"] == 11_699_112 and info["default_input_size"] == 224
    table = _run("info", "resnet18")
    assert "11,699,112" in table.stdout and "1.814 G" in table.stdout


def test_bad_name_exits_2_with_one_line():
    out = _run("info", "resnet05")
    assert out.returncode == 2
    assert "resnet50" in out.stderr and "Traceback" not in out.stderr
    out = _run("frobnicate")
    assert out.returncode == 2
