"""Distributed tuning over KerasTuner's chief/worker protocol: a chief and a worker on 127.0.0.1."""
import os
import socket
import subprocess
import sys
import time

import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(tuner_id: str, directory, port: int) -> subprocess.Popen:
    env = dict(os.environ, KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
               KERASTUNER_ORACLE_PORT=str(port), TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    with open(os.path.join(directory, f"{tuner_id}.log"), "w") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, os.path.join(HERE, "distributed_search.py"), str(directory)],
                                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_chief_and_worker_share_one_search(tmp_path):
    port = free_port()
    # The worker first: it waits for the chief's oracle, so both are ready when the first trial is handed out.
    processes = {"worker0": start("worker0", tmp_path, port)}
    processes["chief"] = start("chief", tmp_path, port)
    try:
        deadline = time.time() + TIMEOUT_S
        for name, process in processes.items():
            code = process.wait(timeout=max(1.0, deadline - time.time()))
            assert code == 0, open(tmp_path / f"{name}.log").read()[-3000:]
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    board = pd.read_csv(tmp_path / "distributed" / "leaderboard.csv", dtype={"trial_id": str})
    assert len(board) == 2 and set(board["status"]) == {"completed"}
    assert sorted(board["tuner_id"]) == ["chief", "worker0"]  # one trial each, both in the chief's leaderboard
    assert board["objective"].notna().all() and (board["epochs"] == 1).all()
    for name in processes:
        assert f"finished {name} 2" in open(tmp_path / f"{name}.log").read()
