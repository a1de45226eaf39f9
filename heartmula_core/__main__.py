"""Command line: ``python -m heartmula_core {sample,decode,generate} ...`` (see README)."""

from __future__ import annotations

import argparse
import sys

from .errors import HeartMuLaError


def build_parser() -> argparse.ArgumentParser:
    from . import cli_sample

    parser = argparse.ArgumentParser(prog="python -m heartmula_core", description="HeartMuLa music generation")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_sample.register(sub)
    from .batch import cli_batch
    cli_batch.register(sub)
    try:
        from . import cli_codec
    except ImportError:  # the codec commands are optional until the codec package lands
        cli_codec = None
    if cli_codec is not None:
        cli_codec.register(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except HeartMuLaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
