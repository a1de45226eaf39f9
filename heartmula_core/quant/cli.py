"""``quantize``: write an fp8 copy of an LM or HeartCodec checkpoint folder.

Runs today as ``python -m heartmula_core.quant --model-dir IN --out OUT --weight-dtype fp8_e4m3fn``;
``register`` adds the same command to ``python -m heartmula_core`` (integration plan).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import HeartMuLaError
from .formats import WEIGHT_DTYPE_CHOICES


def add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", required=True, help="an LM folder (or a root holding one) or a HeartCodec folder")
    p.add_argument("--out", required=True, help="a new (or empty) folder for the fp8 checkpoint")
    p.add_argument("--weight-dtype", default="fp8_e4m3fn", choices=[c for c in WEIGHT_DTYPE_CHOICES if c != "default"],
                   help="fp8 format of the Linear/Embedding weights (e4m3fn: more precision, e5m2: more range)")


def cmd_quantize(args) -> int:
    from .writer import quantize

    done = quantize(args.model_dir, args.out, args.weight_dtype)
    print(f"wrote {args.out}: {done['kind']} with {done['fp8_tensors']} weights in {args.weight_dtype}, "
          f"{done['in_bytes'] / 1e9:.2f} GB -> {done['out_bytes'] / 1e9:.2f} GB "
          f"({done['out_bytes'] / max(1, done['in_bytes']):.3f} x)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="checkpoint folder -> the same folder with fp8 weights")
    add_options(p)
    p.set_defaults(func=cmd_quantize)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m heartmula_core.quant", description=__doc__)
    add_options(parser)
    args = parser.parse_args(argv)
    try:
        return cmd_quantize(args)
    except HeartMuLaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no file was written", file=sys.stderr)
        return 130
