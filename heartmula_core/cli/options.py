"""The command line's options (a public interface: keep names stable) and their translation into the
song path's settings: ``--cfg`` is ``cfg_scale``, ``--batch`` is ``batch_size``, and so on
(``NAMES``, which the song path also uses to name a flag in its messages)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..codes import FRAME_RATE
from ..runtime import DEVICE_CHOICES, DTYPE_CHOICES
from ..settings import WEIGHT_DTYPE_CHOICES, SongSettings

NAMES = {  # the song path's knob -> the flag that sets it
    "seed": "--seed", "seconds": "--seconds", "temperature": "--temperature", "top_k": "--top-k", "cfg_scale": "--cfg",
    "batch_size": "--batch", "continue_from": "--continue-from", "keep_seconds": "--keep-seconds",
    "decode_steps": "--steps", "decode_guidance": "--guidance", "decode_seed": "--seed",
    "weight_dtype": "--weight-dtype", "dtype": "--dtype", "device": "--device", "loras": "--lora",
}


def add_sample_options(p: argparse.ArgumentParser) -> None:
    """Options shared by `sample` and `generate`."""
    p.add_argument("--model-dir", required=True, help="HeartMuLa LM folder (or the root that holds it)")
    p.add_argument("--tags", required=True, help="style tags, or a file holding them")
    p.add_argument("--lyrics", required=True, help="lyrics, or a file holding them")
    p.add_argument("--seconds", type=float, default=30.0, help=f"maximum length; round(S x {FRAME_RATE}) frames")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--cfg", type=float, default=1.5, help="classifier-free guidance scale (1.0 = off)")
    p.add_argument("--batch", type=int, default=1, help="independent songs sampled together")
    add_device_options(p)
    add_weight_dtype_option(p, "weights")
    p.add_argument("--continue-from", metavar="CODES", help="codes file (from 'sample' or Save HeartMuLa Codes) "
                   "whose songs to continue, each --batch times; --seconds counts the whole song")
    p.add_argument("--keep-seconds", type=float, help="keep the first S seconds of each song and write the rest "
                   "anew (a variation); default: keep all (extend)")
    add_lora_option(p)


def add_lora_option(p: argparse.ArgumentParser) -> None:
    """``--lora FILE_OR_FOLDER[:STRENGTH]``, repeatable (sample, generate, batch)."""
    p.add_argument("--lora", action="append", default=[], metavar="FILE_OR_FOLDER[:STRENGTH]", type=lora_arg,
                   help="a LoRA of the LM (a .safetensors file, or the folder PEFT / SimpleTuner saved) merged into "
                        "its weights, at STRENGTH (default 1.0; 0 = off, negative allowed); repeat for several")


def lora_arg(value: str) -> tuple[str, float]:
    """``FILE[:STRENGTH]`` -> (file, strength). A value naming an existing path is a path whole (names
    may hold ':'); otherwise the text after the last ':' is the strength when it is a number."""
    if Path(value).expanduser().exists() or ":" not in value:
        return value, 1.0
    path, _, strength = value.rpartition(":")
    try:
        return path, float(strength)
    except ValueError:
        return value, 1.0  # a ':' inside a name of a file that does not exist: the LoRA check names it


def add_decode_options(p: argparse.ArgumentParser) -> None:
    """Options `decode` and `generate` share."""
    p.add_argument("--steps", type=int, default=10, help="Euler steps of the flow-matching decoder")
    p.add_argument("--guidance", type=float, default=1.25, help="decoder guidance scale (1.0 = off)")
    p.add_argument("--out", required=True, help="audio file: .wav, .flac or .mp3 (name_N.ext per song for batches)")
    p.add_argument("--waveform-out", help="also save the raw float waveform [B, 2, N] as safetensors ('waveform')")


PICK_CODEC = " with --codec-dir (the codec folder to use)"


def add_codec_dir_option(p: argparse.ArgumentParser) -> None:
    """``--codec-dir`` of `generate` and `batch`: the codec folder, when --model-dir holds several
    (say HeartCodec-oss and the HeartCodec-oss-fp8 that `quantize` wrote beside it) or none."""
    p.add_argument("--codec-dir", metavar="PATH", help="the HeartCodec folder to decode with (default: the one "
                   "in or beside --model-dir)")


def add_device_options(p: argparse.ArgumentParser, dtype_help: str | None = None) -> None:
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help=dtype_help)


def add_weight_dtype_option(p: argparse.ArgumentParser, what: str) -> None:
    """``--weight-dtype`` of sample / generate / decode / batch: how ``what`` holds its weights."""
    p.add_argument("--weight-dtype", default="default", choices=WEIGHT_DTYPE_CHOICES,
                   help=f"default: {what} in --dtype; fp8_e4m3fn / fp8_e5m2: stored in fp8 (about half of bf16), "
                        "cast to --dtype per layer")


def song_settings(args) -> SongSettings:
    """The flags of `sample` / `generate` as the song path's settings, checked (named by flag)."""
    return SongSettings(
        seed=args.seed, seconds=args.seconds, temperature=args.temperature, top_k=args.top_k, cfg_scale=args.cfg,
        batch_size=args.batch, continue_from=args.continue_from, keep_seconds=args.keep_seconds,
        decode_steps=getattr(args, "steps", 10), decode_guidance=getattr(args, "guidance", 1.25),
        weight_dtype=args.weight_dtype, loras=tuple(getattr(args, "lora", ())),
    ).checked(NAMES)


def decode_settings(args) -> SongSettings:
    """The flags of `decode` (its --seed is the decoder's) as the song path's settings, checked."""
    return SongSettings(decode_seed=args.seed, decode_steps=args.steps, decode_guidance=args.guidance,
                        weight_dtype=args.weight_dtype).checked(NAMES)
