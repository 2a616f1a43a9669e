"""``swin-gao``: the command line.

Exit status: 0 success, 1 a run that failed (its partial records are kept
and their folder named), 2 bad input (one clear line, no traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Sequence

from swin_gao_lib.errors import InputError, RunError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors are bad input too
        self.print_usage(sys.stderr)
        print(f"swin-gao: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swin-gao", description="Swin Transformer gradient-accumulation kit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = sub.add_parser("train", help="train one configuration and write its records")
    tr.add_argument("params", help="a params YAML file (see params/)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one config key; the value is read as YAML; repeatable")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the records of an earlier run with the same name")
    tr.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                    help="Keras progress: 0 silent, 1 progress bar, 2 one line per epoch")
    return parser


def _train(args: argparse.Namespace) -> int:
    from swin_gao_lib.config import load_config, to_yaml

    cfg = load_config(args.params, args.overrides)
    print(to_yaml(cfg).rstrip(), flush=True)
    from swin_gao_lib.train import train  # imports TensorFlow: after config checks

    train(cfg, overwrite=args.overwrite, verbose=args.verbose)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train}[args.command](args)
    except InputError as exc:
        print(f"swin-gao: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunError as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"swin-gao: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
