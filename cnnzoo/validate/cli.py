"""`cnnzoo validate`: validate an export and gate a deployment (exit 0 passed, 1 failed, 2 bad arguments).

The main CLI adds this command's arguments (`add_arguments`, defined in cnnzoo/cli/validate_args.py so that
`--help` imports no TensorFlow) and runs `run(args)`; `python -m cnnzoo.validate.cli` runs it alone.

Example:
    $ cnnzoo validate exported/digits incoming/ --golden golden/ --out validation/ \\
          --threshold max_latency_p99_ms=25 --threshold min_consistency=0.95
    $ cnnzoo validate exported/digits train_images/ --save-reference
"""
from __future__ import annotations

import argparse
import json
import sys

from cnnzoo._checks import received
from cnnzoo.cli.validate_args import add_validate_arguments as add_arguments


def _thresholds(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"`--threshold` must be NAME=VALUE. {received('--threshold', item)}")
        if value.strip().lower() == "none":
            out[name.strip()] = None
            continue
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"`--threshold` value must be a number or 'none'. "
                             f"{received('--threshold', item)}") from None
    return out


def _int_list(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"`{name}` must be comma-separated integers. {received(name, text)}") from None


def run(args: argparse.Namespace) -> int:
    """Run `cnnzoo validate`; returns 0 (passed) or 1 (failed). Bad arguments raise ValueError, TypeError or
    FileNotFoundError (the caller prints them and exits 2)."""
    import cnnzoo.validate as validation

    if args.save_reference:
        stats = validation.reference_stats(args.model, args.data, path=args.reference, max_images=args.max_images)
        if stats.path is None:
            raise ValueError("An in-memory model has nowhere to save statistics; pass --reference FILE. "
                             f"{received('model', args.model)}")
        print(f"saved reference statistics of {stats.n_images} images to {stats.path}")
        return 0
    report = validation.validate(
        args.model, args.data, reference=args.reference, golden=args.golden,
        thresholds=_thresholds(args.threshold), checks=[c.strip() for c in args.checks.split(",") if c.strip()],
        perturbations=args.perturb or "default", max_images=args.max_images, latency_runs=args.latency_runs,
        batch_sizes=_int_list(args.batch_sizes, "--batch-sizes"), stress_rate=args.stress_rate,
        stress_seconds=args.stress_seconds, stress_workers=args.stress_workers, split="val", verbose=True)
    if args.out:
        written = report.save(args.out)
        print(f"report written to {written['markdown']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(("PASSED" if report.passed else "FAILED") + f" ({len(report.checks)} checks)")
        for check in report.checks:
            print(f"  {'ok  ' if check['passed'] else 'FAIL'} {check['name']}: {check['value']!s:.8} "
                  f"{check['op']} {check['threshold']}  {check['detail']}")
        for section, reason in report.skipped.items():
            print(f"  skipped {section}: {reason}")
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m cnnzoo.validate.cli MODEL DATA ...`: exit 0 passed, 1 failed, 2 bad arguments."""
    from cnnzoo.cli import quiet
    from cnnzoo.cli.errors import is_user_error, one_line

    quiet.quiet_environment()
    parser = add_arguments(argparse.ArgumentParser(prog="cnnzoo validate", description=__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    with quiet.filtered_stderr():
        try:
            return run(args)
        except Exception as error:
            if not is_user_error(error):
                raise
            print(f"cnnzoo validate: error: {one_line(error)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
