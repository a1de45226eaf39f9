"""`python -m heartmula_core quantize`: an LM or HeartCodec folder -> the same folder with fp8 weights.

The weights ``weight_plan`` holds in fp8 when loading with ``--weight-dtype`` are written in fp8 with
a per-tensor scale (quant/writer.py, ComfyUI's ``weight_scale`` + ``comfy_quant`` layout); config.json
(and an LM's tokenizer.json and gen_config.json) go beside them, so the output is a model folder
like the input. Loading it gives the same weights as loading the input with ``--weight-dtype``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoints.folders import is_kind, weight_files
from ..codec.config import CodecConfig
from ..codec.layout import is_ignored_key
from ..codec.load import weight_plan as codec_weight_plan
from ..codec.weight_norm import WeightNormFoldingSource
from ..errors import OutputError
from ..lm.config import HeartMuLaConfig
from ..lm.load import resolve_lm_folder
from ..lm.load import weight_plan as lm_weight_plan
from ..quant import formats
from ..quant.storage import CHECKPOINT
from ..quant.source import prepare
from ..quant.writer import write_checkpoint
from ..weights import TensorSource, check_keys

FP8_CHOICES = tuple(c for c in formats.WEIGHT_DTYPE_CHOICES if c != "default")


def quantize(model_dir: str | Path, out: str | Path, weight_dtype: str = "fp8_e4m3fn") -> dict:
    """Write ``model_dir`` (an LM folder or a root holding one, or a HeartCodec folder) to the new
    folder ``out`` with fp8 weights. Returns a summary: kind, input and output bytes, tensors converted."""
    fp8 = formats.parse_weight_dtype(weight_dtype) if weight_dtype in formats.WEIGHT_DTYPE_CHOICES else None
    if fp8 is None:
        raise OutputError(f"quantize writes fp8 weights; --weight-dtype must be one of {', '.join(FP8_CHOICES)}, "
                          f"got {weight_dtype}.")
    folder = Path(model_dir).expanduser()
    if is_kind(folder, "codec"):
        shapes, plan = codec_weight_plan(CodecConfig.from_folder(folder), fp8, CHECKPOINT)
        files = weight_files(folder, "codec")
        check_weights(WeightNormFoldingSource(TensorSource.from_files(files)), shapes, plan, is_ignored_key)
        return write_checkpoint(folder, files, plan, [folder / "config.json"], out, "codec")
    files = resolve_lm_folder(folder)
    shapes, plan = lm_weight_plan(HeartMuLaConfig.from_file(files.config), fp8, CHECKPOINT)
    check_weights(TensorSource.from_files(files.weights), shapes, plan)
    return write_checkpoint(files.folder, files.weights, plan, [files.config, files.tokenizer, files.gen_config],
                            out, "lm")


def check_weights(source: TensorSource, shapes: dict, plan, ignore=lambda _key: False) -> None:
    """The files hold exactly the tensors of the model config.json describes (the loaders' key and
    shape check, before anything is written): weights beside another model's config.json are refused."""
    args = prepare(source, lambda _key: torch.float32, shapes, plan)
    made_here = set(args["expected"]) - set(shapes)  # scales and markers the writer adds
    check_keys(shapes, args["source"], lambda key: key in made_here or ignore(key), args["dtype_for"])


def cmd_quantize(args) -> int:
    done = quantize(args.model_dir, args.out, args.weight_dtype)
    print(f"wrote {args.out}: {done['kind']} with {done['fp8_tensors']} weights in {args.weight_dtype}, "
          f"{done['in_bytes'] / 1e9:.2f} GB -> {done['out_bytes'] / 1e9:.2f} GB "
          f"({done['out_bytes'] / max(1, done['in_bytes']):.3f} x)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="checkpoint folder -> the same folder with fp8 weights")
    p.add_argument("--model-dir", required=True, help="an LM folder (or a root holding one) or a HeartCodec folder")
    p.add_argument("--out", required=True, help="a new (or empty) folder for the fp8 checkpoint")
    p.add_argument("--weight-dtype", default="fp8_e4m3fn", choices=FP8_CHOICES,
                   help="fp8 format of the Linear/Embedding weights (e4m3fn: more precision, e5m2: more range)")
    p.set_defaults(func=cmd_quantize)
