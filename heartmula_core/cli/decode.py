"""`python -m heartmula_core decode`: codes -> audio file (the codec half of the pipeline).

Audio files are 16-bit PCM (WAV, FLAC) or MP3 where libsndfile supports it, clipped to [-1, 1];
``--waveform-out`` keeps the raw float waveform before that conversion (audio_files.py). Every file
goes to a temporary name in the target folder first and is renamed when complete, so a failure or
Ctrl-C never leaves a partial file behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import OutputTarget
from ..audio_files import audio_format, write_audio, write_waveform
from ..codes import load_codes
from ..quant.storage import WeightStorage
from ..runtime import memory_errors, pick_device, pick_dtype
from ..settings import SongSettings
from ..song import CodecFolder, DecodePlan, decode_song, plan_decode
from .checks import audio_targets, check_distinct
from .options import NAMES, add_decode_options, add_device_options, add_weight_dtype_option, decode_settings
from .progress import StepBar


@dataclass
class Decoding:
    """A checked decode: the codec folder (weights not loaded yet), its plan and where audio goes."""

    codec: CodecFolder
    plan: DecodePlan
    targets: list[OutputTarget]
    waveform: OutputTarget | None


def codec_folder(args, settings: SongSettings, codec_dir) -> CodecFolder:
    """The codec folder on the device the flags pick (its config read, the weights not loaded yet)."""
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device, default_gpu=torch.float32)  # the codec stays fp32 unless asked
    return CodecFolder(codec_dir, device, dtype, WeightStorage.named(settings.weight_dtype))


def plan_decoding(args, settings: SongSettings, codec: CodecFolder, lengths: list[int], inputs=(),
                  other_outputs=()) -> Decoding:
    """Before the codec loads: the decoder's settings and memory, then output paths and free disk space."""
    audio_format(Path(args.out))
    plan = plan_decode(codec, len(lengths), max(lengths), settings, NAMES)
    targets, wave = audio_targets(args.out, lengths, args.waveform_out)
    check_distinct(targets + [wave, *other_outputs], inputs)
    return Decoding(codec, plan, targets, wave)


def run_decoding(args, job: Decoding, codes: torch.Tensor, lengths: torch.Tensor) -> str:
    """Load the codec, decode, write the outputs; returns a summary line."""
    codec = job.codec
    start = time.perf_counter()
    with StepBar("decoding", "step") as bar, \
            memory_errors(job.plan.needed, codec.device, f"Decoding {len(lengths)} song(s)", "Decode fewer songs at once."):
        audio = decode_song(codec, codes, lengths, job.plan, bar)
    seconds = time.perf_counter() - start
    if job.waveform is not None:
        write_waveform(job.waveform, audio.waveform)
    paths = write_audio(args.out, audio.waveform, audio.samples, audio.sample_rate, job.targets)
    audio_seconds = sum(audio.samples) / audio.sample_rate
    return (f"decoded {audio_seconds:.2f} s of audio in {seconds:.2f} s "
            f"({seconds / max(audio_seconds, 1e-9):.3f} s per audio second) on {codec.device} "
            f"{str(codec.dtype).replace('torch.', '')}; wrote {', '.join(str(p) for p in paths)}")


def cmd_decode(args) -> int:
    settings = decode_settings(args)
    codes, lengths = load_codes(args.codes)
    job = plan_decoding(args, settings, codec_folder(args, settings, args.model_dir), lengths.tolist(),
                        inputs=[args.codes])
    print(run_decoding(args, job, codes, lengths))
    return 0


def register(subparsers) -> None:
    d = subparsers.add_parser("decode", help="codes.safetensors -> audio file")
    d.add_argument("--model-dir", required=True, help="HeartCodec folder (or the root that holds it)")
    d.add_argument("--codes", required=True, help="codes file written by 'sample' (codes [B,8,T], lengths [B])")
    d.add_argument("--seed", type=int, default=0)
    add_device_options(d, "flow-matching transformer dtype (auto = fp32); the conv decoder is always fp32")
    add_weight_dtype_option(d, "the transformer's weights")
    add_decode_options(d)
    d.set_defaults(func=cmd_decode)
