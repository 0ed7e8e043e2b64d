"""Notebooks run in CI in quick mode: the kernel inherits this environment."""
import os

os.environ.setdefault("CNNZOO_QUICK", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
