"""`cnnzoo` command line: one sub-command per verb; user errors exit 2 with one line, no traceback.

Example:
    $ cnnzoo list "resnet*"
    $ cnnzoo info efficientnet_b0 --json
"""
from __future__ import annotations

import argparse
import json
import os
import sys


class UsageError(Exception):
    """A user mistake (bad argument, missing path): printed as one line, exit code 2."""


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
    if args.json:
        print(json.dumps(names))
    else:
        print("\n".join(names) if names else f"no model matches {args.pattern!r}")
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cnnzoo", description="Keras 3 CNN model zoo and transfer-learning toolkit.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'resnet*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="params, MACs, default input size and paper of a model")
    p.add_argument("name", help="a name from `cnnzoo list`")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError) as error:
        if args.debug:
            raise
        print(f"cnnzoo {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
