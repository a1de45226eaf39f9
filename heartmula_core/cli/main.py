"""Command line: ``python -m heartmula_core {sample,batch,decode,generate,quantize} ...`` (see README). Every error
we raise on purpose ends as one ``error: ...`` line and exit status 2; Ctrl-C (130) and SIGTERM / SIGHUP
(128 + the signal) end as one line too, with no file half-written."""

from __future__ import annotations

import argparse
import sys

from ..errors import HeartMuLaError
from . import batch, decode, generate, quantize, sample
from .stop_signals import Terminated, stop_like_ctrl_c


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m heartmula_core", description="HeartMuLa music generation")
    sub = parser.add_subparsers(dest="command", required=True)
    sample.register(sub)
    batch.register(sub)
    decode.register(sub)
    generate.register(sub)
    quantize.register(sub)
    return parser


def _pass_through_undecodable_bytes() -> None:
    """Paths given as bytes that are not UTF-8 reach us as lone surrogates; print them back as the
    same bytes instead of failing with UnicodeEncodeError after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="surrogateescape")
        except (AttributeError, ValueError, OSError):
            pass


def main(argv=None) -> int:
    """Every error we raise on purpose ends as one ``error: ...`` line and exit status 2."""
    _pass_through_undecodable_bytes()
    args = build_parser().parse_args(argv)
    try:
        with stop_like_ctrl_c():
            return args.func(args)
    except HeartMuLaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Terminated as stop:
        print(f"terminated ({stop}): files not complete yet were not written", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("interrupted: files not complete yet were not written", file=sys.stderr)
        return 130

