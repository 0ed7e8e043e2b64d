"""The arguments of `cnnzoo validate`, shared by the main CLI and `python -m cnnzoo.validate.cli`.

A leaf module (argparse and `cnnzoo.options` only), so `--help` imports no TensorFlow and neither CLI module
imports the other.
"""
from __future__ import annotations

import argparse

from cnnzoo import options


def add_validate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `cnnzoo validate` (run by cnnzoo.validate.cli.run)."""
    parser.add_argument("model", help="export directory, SavedModel, .tflite, .onnx or .keras file")
    parser.add_argument("data", help="folder of images in class subfolders: the new or held-out data")
    parser.add_argument("--reference", help="drift reference: a reference_stats.json or a folder of reference "
                                            "images (default: reference_stats.json beside the export)")
    parser.add_argument("--save-reference", action="store_true",
                        help="measure DATA as the drift reference, save reference_stats.json beside the export "
                             "(or at --reference), and stop")
    parser.add_argument("--golden", help="folder of golden cases in class subfolders")
    parser.add_argument("--out", help="directory for report.json, report.md and the plots")
    parser.add_argument("--checks", default=",".join(options.VALIDATION_SECTIONS),
                        help="comma-separated sections to run")
    parser.add_argument("--perturb", action="append", metavar="NAME",
                        help="a consistency perturbation (repeatable): default, hflip, vflip, brightness+10%%, ...")
    parser.add_argument("--threshold", action="append", metavar="NAME=VALUE", default=[],
                        help="a pass/fail limit (repeatable), e.g. max_latency_p99_ms=25; VALUE 'none' ungates")
    parser.add_argument("--max-images", type=int, default=1000, help="images of DATA to use (default 1000)")
    parser.add_argument("--latency-runs", type=int, default=50)
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32,64", help="comma-separated batch sizes")
    parser.add_argument("--stress-rate", type=float, default=20.0, help="stress requests per second")
    parser.add_argument("--stress-seconds", type=float, default=3.0, help="stress duration; 0 skips it")
    parser.add_argument("--stress-workers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser
