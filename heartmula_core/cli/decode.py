"""`python -m heartmula_core decode | generate`: codes -> audio file, and lyrics + tags -> audio file.

Audio files are 16-bit PCM (WAV, FLAC) or MP3 where libsndfile supports it, clipped to [-1, 1];
``--waveform-out`` keeps the raw float waveform before that conversion (audio_files.py). Every file
goes to a temporary name in the target folder first and is renamed when complete, so a failure or
Ctrl-C never leaves a partial file behind.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ..audio_files import audio_format, write_audio, write_waveform
from ..checkpoints.folders import codec_folder_near, resolve_folder
from ..codec.config import CodecConfig
from ..codes import load_codes, samples_for, save_codes
from ..runtime import DEVICE_CHOICES, DTYPE_CHOICES, memory_errors, pick_device, pick_dtype
from ..settings import seeded_generator
from .checks import audio_targets, check_codec_memory, check_decode_args, check_distinct, check_sample_args, codes_target
from .first_run import add_download_option, fetch_missing
from .progress import StepBar
from .quantize import add_weight_dtype_option
from .sample import add_sample_options, read_prefix, run_sampling, songs_of


def add_decode_options(p: argparse.ArgumentParser) -> None:
    """Options `decode` and `generate` share (a public interface: keep names stable)."""
    p.add_argument("--steps", type=int, default=10, help="Euler steps of the flow-matching decoder")
    p.add_argument("--guidance", type=float, default=1.25, help="decoder guidance scale (1.0 = off)")
    p.add_argument("--out", required=True, help="audio file: .wav, .flac or .mp3 (name_N.ext per song for batches)")
    p.add_argument("--waveform-out", help="also save the raw float waveform [B, 2, N] as safetensors ('waveform')")


def prepare_decoding(args, codec_dir, lengths: list[int], inputs=(), other_outputs=()):
    """Before the codec loads: settings, output paths, free disk space and memory.
    Returns (device, dtype, codec folder, audio targets, waveform target, bytes the decode needs)."""
    check_decode_args(args)
    audio_format(Path(args.out))
    targets, wave = audio_targets(args.out, lengths, args.waveform_out)
    check_distinct(targets + [wave, *other_outputs], inputs)
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device, default_gpu=torch.float32)  # the codec stays fp32 unless asked
    folder = resolve_folder(codec_dir, "codec")
    needed = check_codec_memory(CodecConfig.from_folder(folder), len(lengths), max(lengths), device, dtype,
                                args.weight_dtype)
    return device, dtype, folder, targets, wave, needed


def run_decoding(args, plan, codes: torch.Tensor, lengths: torch.Tensor) -> str:
    """Load the codec, decode, write the outputs; returns a summary line."""
    from ..codec import decode, load_codec
    from ..quant.formats import parse_weight_dtype

    device, dtype, folder, targets, wave, needed = plan
    codec = load_codec(folder, device=device, dtype=dtype, weight_dtype=parse_weight_dtype(args.weight_dtype))
    start = time.perf_counter()
    with StepBar("decoding", "step") as bar, \
            memory_errors(needed, device, f"Decoding {len(lengths)} song(s)", "Decode fewer songs at once."):
        waveform = decode(codec, codes, lengths, steps=args.steps, guidance=args.guidance,
                          generator=seeded_generator(args.seed, "cpu", "--seed"), on_step=bar)
    seconds = time.perf_counter() - start
    rate = codec.config.sample_rate
    samples = [samples_for(n, rate) for n in lengths.tolist()]
    if wave is not None:
        write_waveform(wave, waveform)
    paths = write_audio(args.out, waveform, samples, rate, targets)
    audio_seconds = sum(samples) / rate
    return (f"decoded {audio_seconds:.2f} s of audio in {seconds:.2f} s "
            f"({seconds / max(audio_seconds, 1e-9):.3f} s per audio second) on {device} "
            f"{str(dtype).replace('torch.', '')}; wrote {', '.join(str(p) for p in paths)}")


def cmd_decode(args) -> int:
    check_decode_args(args)
    codes, lengths = load_codes(args.codes)
    plan = prepare_decoding(args, args.model_dir, lengths.tolist(), inputs=[args.codes])
    print(run_decoding(args, plan, codes, lengths))
    return 0


def cmd_generate(args) -> int:
    """Everything that can be checked is checked before sampling: the settings of both halves, the
    model folders (fetched first with --download), every output path, and that the codec's codebook
    is the one the LM samples for."""
    max_frames = check_sample_args(args)
    check_decode_args(args)  # every setting before a download of several GB
    prefix = read_prefix(args)
    songs = songs_of(args, prefix)
    fetch_missing(args)
    codec_dir = codec_folder_near(args.model_dir)
    codes_out = codes_target(args.codes_out, "--codes-out", songs, max_frames) if args.codes_out else None
    plan = prepare_decoding(args, codec_dir, [max_frames] * songs, inputs=[args.continue_from] if prefix else (),
                            other_outputs=[codes_out])
    codebook_size = CodecConfig.from_folder(plan[2]).codebook_size
    codes, lengths, summary = run_sampling(args, codebook_size, prefix)
    print(summary)
    if codes_out is not None:
        save_codes(codes_out, codes, lengths)
    print(run_decoding(args, plan, codes, lengths))
    return 0


def register(subparsers) -> None:
    d = subparsers.add_parser("decode", help="codes.safetensors -> audio file")
    d.add_argument("--model-dir", required=True, help="HeartCodec folder (or the root that holds it)")
    d.add_argument("--codes", required=True, help="codes file written by 'sample' (codes [B,8,T], lengths [B])")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    d.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES,
                   help="flow-matching transformer dtype (auto = fp32); the conv decoder is always fp32")
    add_weight_dtype_option(d, "the transformer's weights")
    add_decode_options(d)
    d.set_defaults(func=cmd_decode)

    g = subparsers.add_parser("generate", help="lyrics + tags -> audio file (sample, then decode)")
    add_sample_options(g)
    add_decode_options(g)
    g.add_argument("--codes-out", help="also save the sampled codes")
    add_download_option(g)
    g.set_defaults(func=cmd_generate)

