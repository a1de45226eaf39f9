"""Checks the command line runs before any model loads: settings by their flag names, output paths,
free disk space and memory. A mistake costs a second, not the minutes of sampling before it."""

from __future__ import annotations

import math
import os
from pathlib import Path

from ..atomic import OutputTarget, check_free_space, output_target
from ..audio_files import audio_paths
from ..codec import estimate_decode_bytes
from ..codec.load import dtype_for
from ..codec.load import weight_plan as codec_weight_plan
from ..codes import CODEBOOKS, FRAME_RATE, SAMPLES_PER_FRAME
from ..errors import OutputError
from ..lm.budget import estimate_generation_bytes, frames_for_seconds
from ..lm.load import weight_plan as lm_weight_plan
from ..quant.formats import parse_weight_dtype
from ..quant.store import held_bytes
from ..runtime import check_memory
from ..settings import check_decoding, check_sampling, check_seed

SAMPLE_FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "cfg_scale": "--cfg", "batch_size": "--batch"}
DECODE_FLAGS = {"steps": "--steps", "guidance": "--guidance"}
AUDIO_BYTES_PER_SAMPLE = {".wav": 4.0, ".flac": 4.0, ".mp3": 0.5}  # stereo 16-bit PCM; MP3 is far smaller


def check_sample_args(args) -> int:
    """Every sampling setting, named by its flag; returns the frame limit."""
    check_seed(args.seed, "--seed")
    check_sampling(args.temperature, args.top_k, args.cfg, args.batch, SAMPLE_FLAGS)
    return frames_for_seconds(args.seconds, "--seconds")


def check_decode_args(args) -> None:
    check_seed(args.seed, "--seed")
    check_decoding(args.steps, args.guidance, DECODE_FLAGS)


def codes_target(path, flag: str, songs: int, frames: int) -> OutputTarget:
    target = output_target(path, flag, "codes.safetensors")
    check_free_space(target, songs * CODEBOOKS * frames * 8 + 4096)
    return target


def audio_targets(out, lengths: list[int], waveform_out=None) -> tuple[list[OutputTarget], OutputTarget | None]:
    """--out (name_0.ext, name_1.ext, ... for several songs) and --waveform-out, checked and sized."""
    paths = audio_paths(out, len(lengths))
    per_sample = AUDIO_BYTES_PER_SAMPLE.get(Path(out).suffix.lower(), 4.0)
    targets = [output_target(p, "--out", "song" + (Path(out).suffix or ".wav")) for p in paths]
    for target, frames in zip(targets, lengths):
        check_free_space(target, int(frames * SAMPLES_PER_FRAME * per_sample) + 4096)
    wave = None
    if waveform_out:
        wave = output_target(waveform_out, "--waveform-out", "waveform.safetensors")
        check_free_space(wave, len(lengths) * max(lengths) * SAMPLES_PER_FRAME * 2 * 4 + 4096)
    return targets, wave


def check_distinct(targets: list[OutputTarget | None], inputs: list[str | Path] = ()) -> None:
    """No two outputs may be the same file, and no output may be an input of the same run."""
    seen: dict[str, OutputTarget] = {}
    for target in (t for t in targets if t is not None and not t.discard):
        key = os.path.normcase(str(target.path))
        if key in seen:
            raise OutputError(f"{seen[key].what} {seen[key].given} and {target.what} {target.given} are the same "
                              "file; give each output its own name.")
        seen[key] = target
    for path in inputs:
        key = os.path.normcase(os.path.realpath(path))
        if key in seen:
            raise OutputError(f"{seen[key].what} {seen[key].given} is the input file {path}; write to another name.")


def check_lm_memory(args, files, config, prompt, max_frames: int, device, dtype, kept: list[int] = ()) -> int:
    """Weights (as held: fp8 ones at a byte each) plus the generation's caches must fit (``kept``:
    frames kept per song when continuing saved songs); returns the generation's own bytes."""
    shapes, plan = lm_weight_plan(config, parse_weight_dtype(args.weight_dtype))
    generation = estimate_generation_bytes(config, prompt.length, max_frames, len(kept) or args.batch, args.cfg, dtype,
                                           kept)
    weights = held_bytes(shapes, plan, lambda _name: dtype)
    check_memory(weights + generation, device, f"Sampling {args.batch} song(s) of up to {args.seconds:g} s "
                 f"with {files.folder.name}", "Lower --batch or --seconds, pick a smaller --dtype, or hold the "
                 "weights in fp8 (--weight-dtype fp8_e4m3fn).")
    return generation


def check_codec_memory(config, songs: int, frames: int, device, dtype, weight_dtype: str = "default") -> int:
    shapes, plan = codec_weight_plan(config, parse_weight_dtype(weight_dtype))
    decoding = estimate_decode_bytes(config, songs, dtype, frames=frames)
    weights = held_bytes(shapes, plan, lambda name: dtype_for(name, dtype))
    seconds = math.ceil(frames / FRAME_RATE)
    check_memory(weights + decoding, device, f"Decoding {songs} song(s) of up to {seconds} s",
                 "Decode fewer songs at once (save the codes, decode them one by one), hold the transformer's "
                 "weights in fp8 (--weight-dtype fp8_e4m3fn), or use --device cpu.")
    return decoding
