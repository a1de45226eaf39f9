"""Checks the command line runs before any model loads: settings by their flag names, output paths,
free disk space and memory. A mistake costs a second, not the minutes of sampling before it."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from .atomic import OutputTarget, check_free_space, output_target
from .errors import OutputError
from .runtime import check_memory
from .settings import check_decoding, check_sampling, check_seed

SAMPLE_FLAGS = {"temperature": "--temperature", "top_k": "--top-k", "cfg_scale": "--cfg", "batch_size": "--batch"}
DECODE_FLAGS = {"steps": "--steps", "guidance": "--guidance"}
SAMPLES_PER_FRAME = 3840  # 48 kHz / 12.5 frames per second
AUDIO_BYTES_PER_SAMPLE = {".wav": 4.0, ".flac": 4.0, ".mp3": 0.5}  # stereo 16-bit PCM; MP3 is far smaller


def check_sample_args(args) -> int:
    """Every sampling setting, named by its flag; returns the frame limit."""
    from .lm.generate import frames_for_seconds

    check_seed(args.seed, "--seed")
    check_sampling(args.temperature, args.top_k, args.cfg, args.batch, SAMPLE_FLAGS)
    return frames_for_seconds(args.seconds, "--seconds")


def check_decode_args(args) -> None:
    check_seed(args.seed, "--seed")
    check_decoding(args.steps, args.guidance, DECODE_FLAGS)


def codes_target(path, flag: str, songs: int, frames: int) -> OutputTarget:
    target = output_target(path, flag, "codes.safetensors")
    check_free_space(target, songs * 8 * frames * 8 + 4096)
    return target


def audio_targets(out, lengths: list[int], waveform_out=None) -> tuple[list[OutputTarget], OutputTarget | None]:
    """--out (name_0.ext, name_1.ext, ... for several songs) and --waveform-out, checked and sized."""
    from .cli_codec import audio_paths

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


def _weight_bytes(module: torch.nn.Module, dtype_for) -> int:
    return sum(p.numel() * torch.empty((), dtype=dtype_for(name)).element_size()
               for name, p in module.named_parameters())


def check_lm_memory(args, files, config, prompt, max_frames: int, device, dtype) -> int:
    """Weights plus the generation's caches must fit; returns the generation's own bytes."""
    from .checkpoints import build_lm
    from .lm.generate import estimate_generation_bytes

    generation = estimate_generation_bytes(config, prompt.length, max_frames, args.batch, args.cfg, dtype)
    weights = _weight_bytes(build_lm(config), lambda _name: dtype)
    check_memory(weights + generation, device, f"Sampling {args.batch} song(s) of up to {args.seconds:g} s "
                 f"with {files.folder.name}", "Lower --batch or --seconds, or pick a smaller --dtype.")
    return generation


def check_codec_memory(config, songs: int, frames: int, device, dtype) -> int:
    from .codec import build_codec, estimate_decode_bytes

    decoding = estimate_decode_bytes(config, songs, dtype, frames=frames)
    weights = _weight_bytes(build_codec(config), lambda name: dtype if name.startswith(
        "flow_matching.estimator.") else torch.float32)
    seconds = math.ceil(frames / 12.5)
    check_memory(weights + decoding, device, f"Decoding {songs} song(s) of up to {seconds} s",
                 "Decode fewer songs at once (save the codes, decode them one by one), or use --device cpu.")
    return decoding
